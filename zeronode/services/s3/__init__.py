"""Amazon S3: buckets, objects on the node's disks, multipart, listings, versioning."""

from zeronode.aws.service import ServiceImpl
from zeronode.services.s3 import (
    bucket_versioning, buckets, cors, listing, multipart, objects, tagging,
)
from zeronode.services.s3.projections import PROJECTIONS

HANDLERS = {
    **buckets.HANDLERS, **objects.HANDLERS, **bucket_versioning.HANDLERS, **multipart.HANDLERS,
    **listing.HANDLERS, **tagging.HANDLERS, **cors.HANDLERS,
}

SERVICE = ServiceImpl(
    model_name="s3", handlers=HANDLERS, projections=PROJECTIONS,
    preflight=cors.preflight, cors_headers=cors.response_headers,
)
