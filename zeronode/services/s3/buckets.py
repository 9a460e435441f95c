"""S3 bucket operations: CreateBucket, HeadBucket, ListBuckets, DeleteBucket, GetBucketLocation.

A bucket is one journal entity (``s3/bucket/<name>``) whose state is the whole bucket record;
the ``s3_buckets`` table is its projection. Existence checks run inside the journal's writer
transaction (the mutation callable), so two concurrent CreateBuckets on one node cannot both
succeed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from zeronode.aws.errors import AWSError
from zeronode.aws.service import Params, RequestContext
from zeronode.journal import Change
from zeronode.services.s3.names import check_bucket_name
from zeronode.services.s3.projections import (
    BUCKET_CONFIG_KIND,
    BUCKET_KIND,
    PART_KIND,
    UPLOAD_KIND,
    bucket_config_entity,
    bucket_entity,
    part_entity,
    unpack,
    upload_entity,
)
from zeronode.services.s3.segments import free_segments
from zeronode.services.s3.tokens import continuation_token, resume_after

US_EAST_1 = "us-east-1"
MAX_BUCKETS_LIMIT = 10_000


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def no_such_bucket(name: str) -> AWSError:
    return AWSError(
        "NoSuchBucket", "The specified bucket does not exist", 404, extra={"BucketName": name}
    )


def _bucket_region(db: sqlite3.Connection, name: str) -> str | None:
    row = db.execute("SELECT region FROM s3_buckets WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def require_bucket_in(db: sqlite3.Connection, name: str) -> str:
    """``require_bucket`` inside a journal mutation or read: the region, or ``NoSuchBucket``."""
    region = _bucket_region(db, name)
    if region is None:
        raise no_such_bucket(name)
    return region


def bucket_config_in(db: sqlite3.Connection, bucket: str, name: str) -> dict[str, Any] | None:
    """The bucket's ``name`` sub-resource (``cors``, ``tagging``...), or None when unset."""
    row = db.execute(
        "SELECT state FROM s3_bucket_configs WHERE bucket = ? AND name = ?", (bucket, name)
    ).fetchone()
    return unpack(row[0]) if row else None


async def set_bucket_config(
    ctx: RequestContext, bucket: str, name: str, state: dict[str, Any] | None
) -> None:
    """Replace the bucket's ``name`` sub-resource whole (None removes it), as S3's PutBucketX
    and DeleteBucketX do; a Delete of an unset sub-resource is a tombstone all the same."""

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        require_bucket_in(db, bucket)
        return [Change(bucket_config_entity(bucket, name), BUCKET_CONFIG_KIND, state)]

    await ctx.node.journal.submit(mutation)


async def get_bucket_config(ctx: RequestContext, bucket: str, name: str) -> dict[str, Any] | None:
    """The bucket's ``name`` sub-resource, None when unset; ``NoSuchBucket`` first."""

    def read(db: sqlite3.Connection) -> dict[str, Any] | None:
        require_bucket_in(db, bucket)
        return bucket_config_in(db, bucket, name)

    return await ctx.node.journal.read(read)


def required_document(params: Params, member: str) -> dict[str, Any]:
    """The XML document a Put request carries in ``member``; S3 names an empty body itself."""
    document = params.get(member)
    if document is None:
        raise AWSError("MissingRequestBodyError", "Request Body is empty", 400)
    return dict(document)


async def require_bucket(ctx: RequestContext, name: str) -> str:
    """The bucket's region; ``NoSuchBucket`` when it does not exist."""
    region = await ctx.node.journal.read(lambda db: _bucket_region(db, name))
    if region is None:
        raise no_such_bucket(name)
    return region


def _location_constraint(ctx: RequestContext, params: Params) -> str:
    """The region the new bucket lives in, by S3's LocationConstraint rules.

    The region an endpoint serves is the region the client signed for. us-east-1 takes no
    constraint (or the empty one); every other region requires the constraint to name it.
    """
    config = params.get("CreateBucketConfiguration") or {}
    constraint = config.get("LocationConstraint")
    if ctx.region == US_EAST_1:
        if constraint in (None, ""):
            return US_EAST_1
        if constraint == US_EAST_1:
            raise AWSError(
                "InvalidLocationConstraint", "The specified location-constraint is not valid", 400,
                extra={"LocationConstraint": constraint},
            )
        raise AWSError(
            "IllegalLocationConstraintException",
            f"The {constraint} location constraint is incompatible for the region specific "
            "endpoint this request was sent to.",
            400,
        )
    if constraint in (None, ""):
        raise AWSError(
            "IllegalLocationConstraintException",
            "The unspecified location constraint is incompatible for the region specific "
            "endpoint this request was sent to.",
            400,
        )
    if constraint != ctx.region:
        raise AWSError(
            "IllegalLocationConstraintException",
            f"The {constraint} location constraint is incompatible for the region specific "
            "endpoint this request was sent to.",
            400,
        )
    return constraint


async def create_bucket(ctx: RequestContext, params: Params) -> Params:
    name = params["Bucket"]
    check_bucket_name(name)
    region = _location_constraint(ctx, params)
    state = {"region": region, "created_ms": int(time.time() * 1000), "owner": ctx.canonical_user_id}

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        existing = _bucket_region(db, name)
        if existing is None:
            return [Change(bucket_entity(name), BUCKET_KIND, state)]
        if existing == US_EAST_1 and region == US_EAST_1:
            # S3's legacy us-east-1 rule: re-creating your own bucket there answers 200.
            return []
        raise AWSError(
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
            409,
            extra={"BucketName": name},
        )

    await ctx.node.journal.submit(mutation)
    return {"Location": f"/{name}", "BucketArn": bucket_arn(name)}


async def head_bucket(ctx: RequestContext, params: Params) -> Params:
    name = params["Bucket"]
    region = await require_bucket(ctx, name)
    return {"BucketRegion": region, "BucketArn": bucket_arn(name), "AccessPointAlias": False}


async def get_bucket_location(ctx: RequestContext, params: Params) -> Params:
    region = await require_bucket(ctx, params["Bucket"])
    # S3 reports us-east-1 as the absent (null) constraint.
    return {"LocationConstraint": None if region == US_EAST_1 else region}


async def delete_bucket(ctx: RequestContext, params: Params) -> Params:
    """Delete an empty bucket with its configuration and any unfinished multipart uploads.

    Any object version or delete marker makes the bucket not empty, as in S3. The parts of
    abandoned uploads go with the bucket; their bytes are freed after the commit.
    """
    name = params["Bucket"]
    freed: list[dict[str, Any]] = []

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        if _bucket_region(db, name) is None:
            raise no_such_bucket(name)
        if db.execute("SELECT 1 FROM s3_versions WHERE bucket = ? LIMIT 1", (name,)).fetchone():
            raise AWSError(
                "BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                extra={"BucketName": name},
            )
        changes = [Change(bucket_entity(name), BUCKET_KIND, None)]
        for (config,) in db.execute("SELECT name FROM s3_bucket_configs WHERE bucket = ?", (name,)):
            changes.append(Change(bucket_config_entity(name, config), BUCKET_CONFIG_KIND, None))
        for (upload_id,) in db.execute("SELECT upload_id FROM s3_uploads WHERE bucket = ?", (name,)):
            changes.append(Change(upload_entity(name, upload_id), UPLOAD_KIND, None))
        for upload_id, number, state in db.execute(
            "SELECT upload_id, part_number, state FROM s3_parts WHERE bucket = ?", (name,)
        ):
            changes.append(Change(part_entity(name, upload_id, number), PART_KIND, None))
            freed.append(unpack(state)["segment"])  # a part holds one segment (multipart.py)
        return changes

    await ctx.node.journal.submit(mutation)
    await free_segments(ctx, freed)
    return {}


def _list_page(
    db: sqlite3.Connection, after: str, prefix: str, region: str | None, limit: int
) -> list[tuple[str, str, int]]:
    sql = "SELECT name, region, created_ms FROM s3_buckets WHERE name > ? AND name >= ?"
    args: list[Any] = [after, prefix]
    if region is not None:
        sql += " AND region = ?"
        args.append(region)
    sql += " ORDER BY name LIMIT ?"
    args.append(limit + 1)
    rows = db.execute(sql, args).fetchall()
    # ``name >= prefix`` bounds the scan; the startswith check makes it exact.
    return [r for r in rows if r[0].startswith(prefix)]


async def list_buckets(ctx: RequestContext, params: Params) -> Params:
    max_buckets = params.get("MaxBuckets")
    if max_buckets is not None and not 1 <= max_buckets <= MAX_BUCKETS_LIMIT:
        raise AWSError(
            "InvalidArgument",
            f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS_LIMIT}",
            400,
            extra={"ArgumentName": "max-buckets", "ArgumentValue": str(max_buckets)},
        )
    prefix = params.get("Prefix") or ""
    region = params.get("BucketRegion")
    after = ""
    token = params.get("ContinuationToken")
    if token is not None:
        after = resume_after("s3.ListBuckets", token)
    limit = max_buckets if max_buckets is not None else MAX_BUCKETS_LIMIT
    rows = await ctx.node.journal.read(lambda db: _list_page(db, after, prefix, region, limit))
    page, more = rows[:limit], len(rows) > limit
    out: Params = {
        "Buckets": [
            {
                "Name": name,
                "CreationDate": datetime.fromtimestamp(created_ms / 1000, tz=timezone.utc),
                "BucketRegion": bucket_region,
                "BucketArn": bucket_arn(name),
            }
            for name, bucket_region, created_ms in page
        ],
        "Owner": {"DisplayName": "zeronode", "ID": ctx.canonical_user_id},
    }
    if more:
        out["ContinuationToken"] = continuation_token("s3.ListBuckets", page[-1][0])
    if params.get("Prefix") is not None:
        out["Prefix"] = prefix
    return out


HANDLERS = {
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "ListBuckets": list_buckets,
    "DeleteBucket": delete_bucket,
    "GetBucketLocation": get_bucket_location,
}
