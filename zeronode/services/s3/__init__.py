"""Amazon S3: buckets today; objects, multipart and versioning come with the S3 issue."""

from zeronode.aws.service import ServiceImpl
from zeronode.services.s3.buckets import HANDLERS, BucketProjection

SERVICE = ServiceImpl(model_name="s3", handlers=dict(HANDLERS), projections=(BucketProjection(),))
