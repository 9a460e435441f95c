"""Amazon S3: buckets, objects on the node's disks, multipart, listings, versioning."""

from zeronode.aws.service import ServiceImpl
from zeronode.services.s3 import buckets
from zeronode.services.s3.projections import PROJECTIONS

HANDLERS = {**buckets.HANDLERS}

SERVICE = ServiceImpl(model_name="s3", handlers=HANDLERS, projections=PROJECTIONS)
