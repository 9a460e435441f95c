"""The response side of the AWS wire layer: output dicts and errors to HTTP responses.

Theory of operation
-------------------
A service operation returns a plain dict shaped like the operation's output in botocore's
model (the same dict boto3 would hand its caller, minus ``ResponseMetadata``). This package
turns it into an :class:`~zeronode.aws.http.HttpResponse` that botocore's own response
parser (``botocore/parsers.py``) reads back into exactly that dict. Nothing here is written
per operation: one serializer per protocol walks the output *shape* and reads the same
traits the parser reads (``location``, ``locationName``, ``flattened``, ``xmlAttribute``,
``xmlNamespace``, ``payload``, ``timestampFormat``, ``jsonvalue``, ``resultWrapper``), so a
protocol rule fixed once holds for every operation of every service speaking it. The test
suite checks that claim by round-tripping generated outputs of every operation of the six
models through botocore's parsers.

The protocol is the model's ``metadata.protocol``:

========== ======================= ============================================
protocol   services                module
========== ======================= ============================================
rest-xml   S3                      :mod:`.rest_xml` (+ :mod:`.rest_binding`)
json       DynamoDB, SQS           :mod:`.json`
rest-json  Lambda                  :mod:`.rest_json` (+ :mod:`.rest_binding`)
query      ELBv2, SQS (legacy)     :mod:`.query`
ec2        EC2                     :mod:`.ec2`
========== ======================= ============================================

The XML protocols share :mod:`.xml_body` (shape to elements, escaping) and all share
:mod:`.values` (timestamps, blobs, numbers). Errors are rendered by :mod:`.errors`.

Everything is pure: no clock, no I/O. A streaming payload (S3 ``GetObject``'s ``Body``,
Lambda ``Invoke``'s ``Payload``) may be an async iterator of bytes; it becomes the response
body as is and is never read here. The request id is given by the caller, which also owns
the ``Date`` and ``Content-Length`` headers (the HTTP shell adds them).
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize import ec2, json, query, rest_json, rest_xml
from zeronode.aws.serialize.errors import not_implemented, serialize_error

_SERIALIZERS = {
    "rest-xml": rest_xml.serialize_response,
    "json": json.serialize_response,
    "rest-json": rest_json.serialize_response,
    "query": query.serialize_response,
    "ec2": ec2.serialize_response,
}


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    """``output`` of ``operation_model`` (a botocore ``OperationModel``) as an HTTP response.

    ``output`` holds only the members the service sets (``None`` counts as unset); a
    ``ResponseMetadata`` key, if present, is ignored. Raises ``ValueError`` for a protocol
    zeronode does not speak.
    """
    protocol = operation_model.service_model.metadata.get("protocol")
    try:
        serializer = _SERIALIZERS[protocol]
    except KeyError:
        raise ValueError(f"unsupported protocol {protocol!r}") from None
    return serializer(operation_model, output, request_id=request_id)


__all__ = ["serialize_response", "serialize_error", "not_implemented"]
