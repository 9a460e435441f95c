"""The botocore service models that drive the wire layer, loaded once per process.

Each service zeronode serves is described by the ``service-2.json`` botocore ships: the
operations, their HTTP bindings and their input and output shapes. :func:`service_model`
returns botocore's own :class:`~botocore.model.ServiceModel` for it, cached.

SQS speaks two protocols. botocore 1.44 sends JSON (``X-Amz-Target: AmazonSQS.*``), and its
model says ``"protocols": ["json"]`` only; older SDKs and the AWS CLI v1 before 2024 send the
query protocol (``Action=SendMessage&MessageAttribute.1.Name=...``). The JSON model lost the
query protocol's wire names (``locationName`` on flattened lists and maps, ``resultWrapper``
on outputs), so :func:`sqs_query_model` rebuilds the legacy binding: the same operations and
shapes, protocol ``query``, and the wire names of requests and responses from the tables
below, as the pre-JSON model had them.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from botocore.loaders import Loader
from botocore.model import ServiceModel

__all__ = [
    "SERVICES",
    "SIGNING_NAMES",
    "service_model",
    "sqs_query_model",
]

#: Service names as zeronode uses them, mapped to botocore's model names (the same here).
SERVICES: tuple[str, ...] = ("s3", "dynamodb", "sqs", "lambda", "elbv2", "ec2")

#: SigV4 credential-scope service name -> model name. ELBv2 signs as ``elasticloadbalancing``.
SIGNING_NAMES: dict[str, str] = {
    "s3": "s3",
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "lambda": "lambda",
    "ec2": "ec2",
    "elasticloadbalancing": "elbv2",
}

# The legacy query-protocol wire names of SQS (from the 2012-11-05 query model), applied on
# top of the JSON model: (structure shape, member) -> the member's locationName, and
# list/map shape -> the names of its member, or of its key and value.
_SQS_QUERY_MEMBER_NAMES: dict[tuple[str, str], str] = {
    ("AddPermissionRequest", "AWSAccountIds"): "AWSAccountId",
    ("AddPermissionRequest", "Actions"): "ActionName",
    ("CreateQueueRequest", "Attributes"): "Attribute",
    ("CreateQueueRequest", "tags"): "Tag",
    ("SetQueueAttributesRequest", "Attributes"): "Attribute",
    ("TagQueueRequest", "Tags"): "Tag",
    ("UntagQueueRequest", "TagKeys"): "TagKey",
    ("GetQueueAttributesRequest", "AttributeNames"): "AttributeName",
    ("ReceiveMessageRequest", "AttributeNames"): "AttributeName",
    ("ReceiveMessageRequest", "MessageSystemAttributeNames"): "MessageSystemAttributeName",
    ("ReceiveMessageRequest", "MessageAttributeNames"): "MessageAttributeName",
    ("SendMessageRequest", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SendMessageBatchRequestEntry", "MessageAttributes"): "MessageAttribute",
    ("SendMessageBatchRequestEntry", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SendMessageBatchRequest", "Entries"): "SendMessageBatchRequestEntry",
    ("DeleteMessageBatchRequest", "Entries"): "DeleteMessageBatchRequestEntry",
    ("ChangeMessageVisibilityBatchRequest", "Entries"): "ChangeMessageVisibilityBatchRequestEntry",
    ("MessageAttributeValue", "StringListValues"): "StringListValue",
    ("MessageAttributeValue", "BinaryListValues"): "BinaryListValue",
    ("MessageSystemAttributeValue", "StringListValues"): "StringListValue",
    ("MessageSystemAttributeValue", "BinaryListValues"): "BinaryListValue",
    # Outputs (read by the response side).
    ("ListQueuesResult", "QueueUrls"): "QueueUrl",
    ("ListDeadLetterSourceQueuesResult", "queueUrls"): "QueueUrl",
    ("ReceiveMessageResult", "Messages"): "Message",
    ("Message", "Attributes"): "Attribute",
    ("Message", "MessageAttributes"): "MessageAttribute",
    ("GetQueueAttributesResult", "Attributes"): "Attribute",
    ("ListQueueTagsResult", "Tags"): "Tag",
    ("SendMessageBatchResult", "Successful"): "SendMessageBatchResultEntry",
    ("SendMessageBatchResult", "Failed"): "BatchResultErrorEntry",
    ("DeleteMessageBatchResult", "Successful"): "DeleteMessageBatchResultEntry",
    ("DeleteMessageBatchResult", "Failed"): "BatchResultErrorEntry",
    ("ChangeMessageVisibilityBatchResult", "Successful"): "ChangeMessageVisibilityBatchResultEntry",
    ("ChangeMessageVisibilityBatchResult", "Failed"): "BatchResultErrorEntry",
    ("ListMessageMoveTasksResult", "Results"): "ListMessageMoveTasksResultEntry",
}
# Flattened maps name their key and value: attribute maps Name/Value, tag maps Key/Value.
_SQS_QUERY_MAP_NAMES: dict[str, tuple[str, str]] = {
    "QueueAttributeMap": ("Name", "Value"),
    "MessageBodyAttributeMap": ("Name", "Value"),
    "MessageBodySystemAttributeMap": ("Name", "Value"),
    "MessageSystemAttributeMap": ("Name", "Value"),
    "TagMap": ("Key", "Value"),
}


@functools.cache
def _loader() -> Loader:
    return Loader()


@functools.cache
def _raw_model(name: str) -> dict[str, Any]:
    return _loader().load_service_model(name, "service-2")


@functools.cache
def service_model(name: str) -> ServiceModel:
    """botocore's model for ``name`` (one of :data:`SERVICES`), built once per process."""
    if name not in SERVICES:
        raise KeyError(f"zeronode does not serve {name!r}")
    return ServiceModel(_raw_model(name), service_name=name)


@functools.cache
def sqs_query_model() -> ServiceModel:
    """SQS as the legacy query protocol describes it (``Action=...`` forms, XML responses)."""
    raw = copy.deepcopy(_raw_model("sqs"))
    raw["metadata"]["protocol"] = "query"
    raw["metadata"]["protocols"] = ["query"]
    shapes = raw["shapes"]
    for (structure, member), wire_name in _SQS_QUERY_MEMBER_NAMES.items():
        member_ref = shapes[structure]["members"][member]
        member_ref["locationName"] = wire_name
        target = shapes[member_ref["shape"]]
        if target["type"] == "list":
            # A flattened list repeats the member's name: AttributeName.1, AttributeName.2.
            target["member"]["locationName"] = wire_name
            target["flattened"] = True
        elif target["type"] == "map":
            target["flattened"] = True
    for map_shape, (key_name, value_name) in _SQS_QUERY_MAP_NAMES.items():
        shapes[map_shape]["key"]["locationName"] = key_name
        shapes[map_shape]["value"]["locationName"] = value_name
    for name, operation in raw["operations"].items():
        # Query responses wrap the output: <SendMessageResponse><SendMessageResult>...
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    return ServiceModel(raw, service_name="sqs")
