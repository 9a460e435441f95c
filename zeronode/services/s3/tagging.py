"""Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging.

An object's tags are the ``tags`` field of its version's state (``projections.py``), so
tagging is not a new version: it commits the same version's register again with the whole
updated state, as a new journal event. Each version has its own tags; ``versionId`` picks
one, and without it the current version is meant.

A bucket's tags are its ``tagging`` sub-resource (``s3/bucket-config/<bucket>/tagging``),
``{"TagSet": [{"Key", "Value"}]}``, replaced whole by each PutBucketTagging.

The rules a tag set must follow are ``tag_rules.py``'s, shared with ``x-amz-tagging``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from zeronode.aws.errors import AWSError
from zeronode.aws.service import Params, RequestContext
from zeronode.journal import Change
from zeronode.services.s3.buckets import (
    get_bucket_config,
    require_bucket_in,
    required_document,
    set_bucket_config,
)
from zeronode.services.s3.conditions import no_such_key
from zeronode.services.s3.projections import (
    OBJECT_KIND,
    object_entity,
)
from zeronode.services.s3.tag_rules import (
    BUCKET_TAG_LIMIT,
    OBJECT_TAG_LIMIT,
    tag_set,
    tags_from_tag_set,
)
from zeronode.services.s3.versioning import (
    NULL_VERSION,
    check_version_id,
    current_state,
    version_state,
    versioning_status,
)

TAGGING = "tagging"


def _tagging_document(params: Params, limit: int) -> dict[str, str]:
    """The request's ``<Tagging>`` document as checked tags."""
    return tags_from_tag_set(required_document(params, "Tagging").get("TagSet"), limit)


# -- objects -------------------------------------------------------------------------------


def _object_version(
    db: sqlite3.Connection, bucket: str, key: str, version_id: str | None, method: str
) -> dict[str, Any]:
    """The version a tagging request is about: the current one, or ``version_id``.

    A current version that is a delete marker means the key is gone (``NoSuchKey``); a delete
    marker named by id has no tags to read or write (``MethodNotAllowed``, as S3 answers).
    """
    require_bucket_in(db, bucket)
    if version_id is None:
        state = current_state(db, bucket, key)
        if state is None:
            raise no_such_key(key)
        return state
    check_version_id(version_id)
    state = version_state(db, bucket, key, version_id)
    if state is None:
        raise AWSError("NoSuchVersion", "The specified version does not exist.", 404,
                       extra={"Key": key, "VersionId": version_id})
    if state.get("delete_marker"):
        raise AWSError("MethodNotAllowed",
                       "The specified method is not allowed against this resource.", 405,
                       extra={"Method": method, "ResourceType": "DeleteMarker"},
                       headers={"x-amz-delete-marker": "true"})
    return state


def _version_output(db: sqlite3.Connection, state: dict[str, Any]) -> Params:
    """``VersionId`` as S3 reports it: only once the bucket has had versioning configured."""
    if state["version_id"] == NULL_VERSION and versioning_status(db, state["bucket"]) is None:
        return {}
    return {"VersionId": state["version_id"]}


async def _retag(ctx: RequestContext, params: Params, tags: dict[str, str], method: str) -> Params:
    """Commit ``tags`` as the whole tag set of the addressed version (a new event, same id)."""
    bucket, key, version_id = params["Bucket"], params["Key"], params.get("VersionId")
    output: Params = {}

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        state = _object_version(db, bucket, key, version_id, method)
        output.update(_version_output(db, state))
        updated = {**state, "tags": tags}
        return [Change(object_entity(bucket, state["version_id"], key), OBJECT_KIND, updated)]

    await ctx.node.journal.submit(mutation)
    return output


async def put_object_tagging(ctx: RequestContext, params: Params) -> Params:
    return await _retag(ctx, params, _tagging_document(params, OBJECT_TAG_LIMIT), "PUT")


async def delete_object_tagging(ctx: RequestContext, params: Params) -> Params:
    return await _retag(ctx, params, {}, "DELETE")


async def get_object_tagging(ctx: RequestContext, params: Params) -> Params:
    bucket, key, version_id = params["Bucket"], params["Key"], params.get("VersionId")

    def read(db: sqlite3.Connection) -> Params:
        state = _object_version(db, bucket, key, version_id, "GET")
        return {**_version_output(db, state), "TagSet": tag_set(state.get("tags") or {})}

    return await ctx.node.journal.read(read)


# -- buckets -------------------------------------------------------------------------------


async def put_bucket_tagging(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    state = {"TagSet": tag_set(_tagging_document(params, BUCKET_TAG_LIMIT))}
    await set_bucket_config(ctx, bucket, TAGGING, state)
    return {}


async def get_bucket_tagging(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    state = await get_bucket_config(ctx, bucket, TAGGING)
    if state is None:
        raise AWSError("NoSuchTagSet", "The TagSet does not exist", 404,
                       extra={"BucketName": bucket})
    return {"TagSet": state["TagSet"]}


async def delete_bucket_tagging(ctx: RequestContext, params: Params) -> Params:
    """Remove the bucket's tags; like S3, answers 204 whether or not it had any."""
    await set_bucket_config(ctx, params["Bucket"], TAGGING, None)
    return {}


HANDLERS = {
    "PutObjectTagging": put_object_tagging,
    "GetObjectTagging": get_object_tagging,
    "DeleteObjectTagging": delete_object_tagging,
    "PutBucketTagging": put_bucket_tagging,
    "GetBucketTagging": get_bucket_tagging,
    "DeleteBucketTagging": delete_bucket_tagging,
}
