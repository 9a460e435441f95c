"""The AWS services a node serves, and how the agent builds them.

Each service package exposes ``SERVICE`` (a :class:`~zeronode.aws.service.ServiceImpl`). A
service of the six that has no package yet is still routed and authenticated: its operations
answer with AWS's own error for an unsupported operation.
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.service import ServiceImpl
from zeronode.services import s3

# Keyed by botocore model name.
SERVICES: dict[str, ServiceImpl] = {"s3": s3.SERVICE}

# Every service a node answers for; the ones not in SERVICES answer "not implemented".
MODEL_NAMES = ("s3", "dynamodb", "sqs", "lambda", "elbv2", "ec2")


def all_projections() -> list[Any]:
    from zeronode.storage.replicas import ReplicaProjection

    return [
        *(p for service in SERVICES.values() for p in service.projections),
        ReplicaProjection(),
    ]


async def referenced_blobs(journal: Any) -> set[str]:
    """Every blob id the projections point at; the start-up sweep keeps exactly these."""
    from zeronode.services.s3.segments import referenced_blob_ids

    return await journal.read(referenced_blob_ids)


def build_aws_app(node: Any) -> Any:
    """The raw-ASGI app that serves every AWS API of this node."""
    from zeronode.aws.asgi import AwsApp

    return AwsApp(node, SERVICES)
