"""rest-xml responses (S3).

Headers, status and payload come from :mod:`rest_binding`. The body, when the output has
body members, is one XML document whose root element AWS names per operation
(``ListBucketResult``, ``InitiateMultipartUploadResult``...); the model does not record
those names, so S3's are listed here, and any other operation gets ``<Operation>Result``.
The root declares the service namespace (``http://s3.amazonaws.com/doc/2006-03-01/`` for
S3). A structure payload (``CopyObjectResult``, ``LegalHold``) is the document itself, its
root named by the member's ``locationName`` or its shape name. A blob or string payload
(``GetObject``'s ``Body``) is the HTTP body untouched: bytes, or an async iterator that is
never read here.

S3 quirks kept here: a ``GetObject`` output with a ``ContentRange`` (a ranged GET) is 206
Partial Content, which the model has no member to say; ``GetBucketLocation`` answers
``<LocationConstraint>region</...>`` with the region as the root's text (botocore parses that
document by hand), and the request id travels as ``x-amz-request-id`` with the host id in
``x-amz-id-2``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize import rest_binding
from zeronode.aws.serialize.xml_body import XmlBodyWriter, document, escape_attr, escape_text

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_CONTENT_TYPE = "application/xml"

# Root element names S3 uses for outputs that are not a payload member.
S3_ROOT_ELEMENTS = {
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CreateSession": "CreateSessionResult",
    "DeleteObjects": "DeleteResult",
    "GetBucketAccelerateConfiguration": "AccelerateConfiguration",
    "GetBucketAcl": "AccessControlPolicy",
    "GetBucketCors": "CORSConfiguration",
    "GetBucketLifecycle": "LifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "LifecycleConfiguration",
    "GetBucketLocation": "LocationConstraint",
    "GetBucketLogging": "BucketLoggingStatus",
    "GetBucketNotification": "NotificationConfiguration",
    "GetBucketNotificationConfiguration": "NotificationConfiguration",
    "GetBucketRequestPayment": "RequestPaymentConfiguration",
    "GetBucketTagging": "Tagging",
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketWebsite": "WebsiteConfiguration",
    "GetObjectAcl": "AccessControlPolicy",
    "GetObjectAttributes": "GetObjectAttributesResponse",
    "GetObjectTagging": "Tagging",
    "ListBucketAnalyticsConfigurations": "ListBucketAnalyticsConfigurationResult",
    "ListBucketIntelligentTieringConfigurations": (
        "ListBucketIntelligentTieringConfigurationsOutput"
    ),
    "ListBucketInventoryConfigurations": "ListInventoryConfigurationsResult",
    "ListBucketMetricsConfigurations": "ListMetricsConfigurationsResult",
    "ListBuckets": "ListAllMyBucketsResult",
    "ListDirectoryBuckets": "ListAllMyDirectoryBucketsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "ListObjectVersions": "ListVersionsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "ListParts": "ListPartsResult",
}


def is_s3(service_model: Any) -> bool:
    return service_model.metadata.get("endpointPrefix") == "s3"


def service_namespace(service_model: Any) -> str | None:
    if is_s3(service_model):
        return S3_NAMESPACE
    return service_model.metadata.get("xmlNamespace")


def s3_host_id(request_id: str) -> str:
    """A stable ``x-amz-id-2`` for a request id (AWS's is an opaque base64 token too)."""
    digest = hashlib.sha256(b"zeronode-host-id:" + request_id.encode("utf-8")).digest()
    return base64.b64encode(digest + digest[:16]).decode("ascii")


def request_id_headers(service_model: Any, request_id: str) -> list[tuple[str, str]]:
    if is_s3(service_model):
        return [("x-amz-request-id", request_id), ("x-amz-id-2", s3_host_id(request_id))]
    return [("x-amzn-RequestId", request_id)]


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    service_model = operation_model.service_model
    parts = rest_binding.split_output(operation_model, output)
    headers = request_id_headers(service_model, request_id) + parts.headers
    namespace = service_namespace(service_model)
    writer = XmlBodyWriter(namespace)
    body: Any = b""
    if parts.payload_name is not None:
        payload_shape = parts.payload_shape
        if payload_shape.type_name in ("blob", "string"):
            body = rest_binding.raw_payload(parts.payload_value)
        elif parts.payload_value is not None:
            root = payload_shape.serialization.get("name", payload_shape.name)
            xml: list[str] = []
            _root_element(writer, xml, root, payload_shape, parts.payload_value, namespace)
            body = document(xml)
            headers.append(("Content-Type", XML_CONTENT_TYPE))
    elif parts.has_body_members:
        body = _body_document(operation_model, writer, output, namespace)
        headers.append(("Content-Type", XML_CONTENT_TYPE))
    status = parts.status
    if operation_model.name == "GetObject" and output.get("ContentRange") is not None:
        status = 206
    return HttpResponse(status=status, headers=headers, body=body)


def _body_document(
    operation_model: Any, writer: XmlBodyWriter, output: dict[str, Any], namespace: str | None
) -> bytes:
    shape = operation_model.output_shape
    name = operation_model.name
    xmlns = f' xmlns="{escape_attr(namespace)}"' if namespace else ""
    if is_s3(operation_model.service_model) and name == "GetBucketLocation":
        region = output.get("LocationConstraint") or ""
        return document([f"<LocationConstraint{xmlns}>{escape_text(region)}</LocationConstraint>"])
    root = S3_ROOT_ELEMENTS.get(name) if is_s3(operation_model.service_model) else None
    root = root or f"{name}Result"
    xml = [f"<{root}{xmlns}>"]
    writer.members(xml, shape, output, body_only=True)
    xml.append(f"</{root}>")
    return document(xml)


def _root_element(
    writer: XmlBodyWriter, xml: list[str], root: str, shape: Any, value: Any, namespace: str | None
) -> None:
    """A payload structure as the document root, carrying the service namespace."""
    start = len(xml)
    writer.element(xml, root, shape, value)
    first = xml[start]
    if namespace and ' xmlns="' not in first:
        cut = len(root) + 1
        xml[start] = f'{first[:cut]} xmlns="{escape_attr(namespace)}"{first[cut:]}'
