"""PutBucketVersioning and GetBucketVersioning: the bucket's ``versioning`` sub-resource.

What the status means for writes and deletes is ``versioning.py``'s; here is only the
configuration document. As in S3, a bucket that was never configured answers an empty
``VersioningConfiguration``, and once versioning has been enabled it can only be suspended,
never turned off (there is no third status to send).

MFA delete needs a hardware MFA device; zeronode has none, so ``MFADelete=Enabled`` is
answered ``NotImplemented`` while ``Disabled`` is accepted and reported back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from zeronode.aws.errors import AWSError
from zeronode.aws.parse.rest_xml import malformed_xml
from zeronode.aws.service import Params, RequestContext
from zeronode.journal import Change
from zeronode.services.s3.buckets import require_bucket_in
from zeronode.services.s3.projections import unpack
from zeronode.services.s3.versioning import VERSIONING, set_versioning

STATUSES = ("Enabled", "Suspended")
MFA_DELETE = ("Enabled", "Disabled")


async def put_bucket_versioning(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    config = params.get("VersioningConfiguration")
    if config is None:
        raise malformed_xml()
    status, mfa_delete = config.get("Status"), config.get("MFADelete")
    if status is None and mfa_delete is None:
        raise AWSError("IllegalVersioningConfigurationException",
                       "The Versioning element must be specified", 400)
    if (status is not None and status not in STATUSES) or (
        mfa_delete is not None and mfa_delete not in MFA_DELETE
    ):
        raise malformed_xml()
    if mfa_delete == "Enabled":
        raise AWSError("NotImplemented",
                       "A header you provided implies functionality that is not implemented", 501,
                       sender_fault=False)

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        require_bucket_in(db, bucket)
        current = _configuration(db, bucket)
        new_status = status or current.get("Status")
        if new_status is None:
            # Only MFADelete was sent to a bucket that never had versioning: S3 requires
            # the status alongside it.
            raise AWSError("IllegalVersioningConfigurationException",
                           "The Versioning element must be specified", 400)
        return [set_versioning(bucket, new_status, mfa_delete or current.get("MFADelete"))]

    await ctx.node.journal.submit(mutation)
    return {}


def _configuration(db: sqlite3.Connection, bucket: str) -> dict[str, str]:
    row = db.execute(
        "SELECT state FROM s3_bucket_configs WHERE bucket = ? AND name = ?", (bucket, VERSIONING)
    ).fetchone()
    return unpack(row[0]) if row else {}


async def get_bucket_versioning(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]

    def read(db: sqlite3.Connection) -> dict[str, str]:
        require_bucket_in(db, bucket)
        return _configuration(db, bucket)

    config = await ctx.node.journal.read(read)
    return {name: config[name] for name in ("Status", "MFADelete") if name in config}


HANDLERS = {
    "PutBucketVersioning": put_bucket_versioning,
    "GetBucketVersioning": get_bucket_versioning,
}
