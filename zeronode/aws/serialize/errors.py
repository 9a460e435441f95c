"""Error responses: one :class:`AWSError` rendered the way each service's protocol sends it.

Every SDK recovers ``Error.Code``, ``Error.Message`` and the HTTP status from these bodies
and picks the modeled exception class from the code, so the forms below are AWS's own:

- **S3** (rest-xml): ``<Error><Code/><Message/>[<Resource/>][extra fields]<RequestId/>
  <HostId/></Error>`` without a namespace, plus ``x-amz-request-id``/``x-amz-id-2``.
  Extra fields (``BucketName``, ``Key``, ``ArgumentName``...) become elements, which botocore
  exposes as ``Error.BucketName`` etc. Other rest-xml services use the query form below.
- **json** (DynamoDB, SQS): ``{"__type": "<namespace>#<Code>", "message": ...}``. DynamoDB's
  namespaces are ``com.amazonaws.dynamodb.v20120810`` for its own errors and
  ``com.amazon.coral.validate``/``com.amazon.coral.service`` for the generic ones
  (``ValidationException``, ``UnknownOperationException``...). DynamoDB adds ``x-amz-crc32``.
- **SQS** (json, ``awsQueryCompatible``): ``__type`` is the error's *shape* name
  (``com.amazonaws.sqs#QueueDoesNotExist``) and ``x-amzn-query-error:
  AWS.SimpleQueueService.NonExistentQueue;Sender`` carries the code query clients always
  saw. botocore then reports ``Error.Code`` = the query code and raises the modeled class
  (``QueueDoesNotExist``). A service may raise either spelling; both map to the same wire.
- **rest-json** (Lambda): ``x-amzn-ErrorType: <Code>`` and ``{"Type": "User"|"Service",
  "Message"|"message": ...}`` (the key the error's shape declares).
- **query** (ELBv2, SQS via query): ``<ErrorResponse><Error><Type>Sender</Type><Code/>
  <Message/></Error><RequestId/></ErrorResponse>``; the code is the shape's ``error.code``
  trait when it has one (``LoadBalancerNotFoundException`` is sent as
  ``LoadBalancerNotFound``), which is what the SDKs match exception classes against.
- **ec2**: ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``.

A response to ``HEAD`` (and any 204/304) carries no body, only the status and headers: for
S3 botocore then reports the status as the code (``404``/``Not Found``), exactly as against
AWS.
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize import json as json_protocol
from zeronode.aws.serialize import ec2, query, rest_xml
from zeronode.aws.serialize.rest_binding import header_text
from zeronode.aws.serialize.xml_body import document, escape_attr, escape_text

DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
_CORAL_VALIDATE = "com.amazon.coral.validate"
_CORAL_SERVICE = "com.amazon.coral.service"
_DYNAMODB_CORAL_CODES = {
    "ValidationException": _CORAL_VALIDATE,
    "UnknownOperationException": _CORAL_SERVICE,
    "SerializationException": _CORAL_SERVICE,
    "AccessDeniedException": _CORAL_SERVICE,
    "IncompleteSignatureException": _CORAL_SERVICE,
    "InvalidSignatureException": _CORAL_SERVICE,
    "MissingAuthenticationTokenException": _CORAL_SERVICE,
    "UnrecognizedClientException": _CORAL_SERVICE,
    "ExpiredTokenException": _CORAL_SERVICE,
    "InternalFailure": _CORAL_SERVICE,
    "ServiceUnavailable": _CORAL_SERVICE,
}

# SQS's error shapes (JSON model) and the codes the query protocol used for them: the
# ``awsQueryError`` trait of the Smithy model, which botocore's JSON model does not carry.
SQS_QUERY_CODES = {
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "InvalidAddress": "InvalidAddress",
    "InvalidAttributeName": "InvalidAttributeName",
    "InvalidAttributeValue": "InvalidAttributeValue",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "InvalidIdFormat": "InvalidIdFormat",
    "InvalidMessageContents": "InvalidMessageContents",
    "InvalidSecurity": "InvalidSecurity",
    "KmsAccessDenied": "KMS.AccessDeniedException",
    "KmsDisabled": "KMS.DisabledException",
    "KmsInvalidKeyUsage": "KMS.InvalidKeyUsageException",
    "KmsInvalidState": "KMS.InvalidStateException",
    "KmsNotFound": "KMS.NotFoundException",
    "KmsOptInRequired": "KMS.OptInRequired",
    "KmsThrottled": "KMS.ThrottlingException",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "OverLimit": "OverLimit",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "QueueDeletedRecently": "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "ReceiptHandleIsInvalid": "ReceiptHandleIsInvalid",
    "RequestThrottled": "RequestThrottled",
    "ResourceNotFoundException": "ResourceNotFoundException",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}
_SQS_SHAPES_BY_QUERY_CODE = {code: shape for shape, code in SQS_QUERY_CODES.items()}

_NO_BODY_STATUSES = (204, 304)


def not_implemented(service: str, operation: str) -> AWSError:
    """What a client sees for an operation its model has but zeronode does not serve.

    ``service`` is the botocore model name (``s3``, ``dynamodb``, ``sqs``, ``lambda``,
    ``elbv2``, ``ec2``). Each answer is the code that service uses for functionality it does
    not offer: S3 ``NotImplemented`` (501), the JSON services' ``UnknownOperationException``,
    SQS's modeled ``UnsupportedOperation``, the query protocol's ``InvalidAction`` and EC2's
    ``UnsupportedOperation`` (the action exists, this endpoint does not support it).
    """
    detail = f"The operation {operation} is not implemented by zeronode."
    if service == "s3":
        return AWSError(
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
            501,
            sender_fault=False,
        )
    if service in ("sqs", "ec2"):
        return AWSError("UnsupportedOperation", detail, 400)
    if service == "elbv2":
        return AWSError("InvalidAction", detail, 400)
    return AWSError("UnknownOperationException", detail, 400)


def serialize_error(
    service_model_or_protocol: Any,
    err: AWSError,
    *,
    request_id: str,
    resource: str | None = None,
    method: str | None = None,
) -> HttpResponse:
    """``err`` as the HTTP response the service would send.

    ``service_model_or_protocol`` is a botocore ``ServiceModel`` (preferred: it selects the
    service's exact form and maps codes through the model) or a bare protocol name
    (``rest-xml``, ``json``, ``rest-json``, ``query``, ``ec2``) for errors raised before a
    service is known (a bare ``rest-xml`` means S3, the only rest-xml service zeronode
    serves). ``resource`` is S3's ``<Resource>`` (the bucket or key path).
    ``method`` ``"HEAD"`` sends no body, as AWS does.
    """
    if isinstance(service_model_or_protocol, str):
        service_model, protocol = None, service_model_or_protocol
    else:
        service_model = service_model_or_protocol
        protocol = service_model.metadata.get("protocol", "")
    if protocol == "rest-xml":
        response = _rest_xml(service_model, err, request_id, resource)
    elif protocol == "json":
        response = _json(service_model, err, request_id)
    elif protocol == "rest-json":
        response = _rest_json(service_model, err, request_id)
    elif protocol == "query":
        response = _query(service_model, err, request_id)
    elif protocol == "ec2":
        response = _ec2(err, request_id)
    else:
        raise ValueError(f"unsupported protocol {protocol!r}")
    response.headers.extend((name, header_text(str(value))) for name, value in err.headers.items())
    if (method or "").upper() == "HEAD" or err.status in _NO_BODY_STATUSES:
        response.headers = [(k, v) for k, v in response.headers if k.lower() != "content-type"]
        response.body = b""
    return response


def _fault(err: AWSError) -> str:
    return "Sender" if err.sender_fault else "Receiver"


def _error_shape(service_model: Any, code: str) -> Any:
    """The model's exception shape for ``code`` (its shape name or its ``error.code``)."""
    if service_model is None:
        return None
    if code in service_model.shape_names:
        shape = service_model.shape_for(code)
        return shape if shape.metadata.get("exception") else None
    return service_model.shape_for_error_code(code)


def _rest_xml(
    service_model: Any, err: AWSError, request_id: str, resource: str | None
) -> HttpResponse:
    if service_model is not None and not rest_xml.is_s3(service_model):
        response = _query(service_model, err, request_id)
        response.headers = [("x-amzn-RequestId", request_id), ("Content-Type", "application/xml")]
        return response
    host_id = rest_xml.s3_host_id(request_id)
    xml = [
        "<Error>",
        f"<Code>{escape_text(err.code)}</Code>",
        f"<Message>{escape_text(err.message)}</Message>",
    ]
    if resource is not None:
        xml.append(f"<Resource>{escape_text(resource)}</Resource>")
    xml.extend(_extra_elements(err))
    xml.append(f"<RequestId>{escape_text(request_id)}</RequestId>")
    xml.append(f"<HostId>{escape_text(host_id)}</HostId></Error>")
    headers = [
        ("x-amz-request-id", request_id),
        ("x-amz-id-2", host_id),
        ("Content-Type", "application/xml"),
    ]
    return HttpResponse(status=err.status, headers=headers, body=document(xml))


def _extra_elements(err: AWSError) -> list[str]:
    return [
        f"<{name}>{escape_text(str(value))}</{name}>"
        for name, value in err.extra.items()
        if value is not None
    ]


def _json_members(shape: Any, err: AWSError) -> dict[str, Any]:
    """Message and extra fields under the names the error shape declares."""
    members = shape.members if shape is not None else {}
    message_key = "Message" if "Message" in members and "message" not in members else "message"
    body: dict[str, Any] = {message_key: err.message}
    for name, value in err.extra.items():
        if value is None:
            continue
        member = members.get(name)
        body[name] = json_protocol.to_json_value(member, value) if member is not None else value
    return body


def _json(service_model: Any, err: AWSError, request_id: str) -> HttpResponse:
    headers = [("x-amzn-RequestId", request_id)]
    prefix = service_model.metadata.get("endpointPrefix") if service_model is not None else None
    code = err.code
    if prefix == "sqs":
        shape_name = _SQS_SHAPES_BY_QUERY_CODE.get(code, code)
        query_code = SQS_QUERY_CODES.get(shape_name, code)
        type_name = f"com.amazonaws.sqs#{shape_name}"
        headers.append(("x-amzn-query-error", f"{query_code};{_fault(err)}"))
        shape = _error_shape(service_model, shape_name)
    elif prefix == "dynamodb":
        type_name = f"{_DYNAMODB_CORAL_CODES.get(code, DYNAMODB_NAMESPACE)}#{code}"
        shape = _error_shape(service_model, code)
    else:
        shape = _error_shape(service_model, code)
        type_name = code
        if service_model is not None and "awsQueryCompatible" in service_model.metadata:
            query_error = f"{_query_code(service_model, code)};{_fault(err)}"
            headers.append(("x-amzn-query-error", query_error))
    body = json_protocol.dumps({"__type": type_name, **_json_members(shape, err)})
    if service_model is not None:
        headers.append(("Content-Type", json_protocol.content_type(service_model)))
        json_protocol.finish_headers(service_model, headers, body)
    else:
        headers.append(("Content-Type", "application/x-amz-json-1.0"))
    return HttpResponse(status=err.status, headers=headers, body=body)


def _rest_json(service_model: Any, err: AWSError, request_id: str) -> HttpResponse:
    shape = _error_shape(service_model, err.code)
    body_data = {"Type": "User" if err.sender_fault else "Service", **_json_members(shape, err)}
    headers = [
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", err.code),
        ("Content-Type", "application/json"),
    ]
    return HttpResponse(status=err.status, headers=headers, body=json_protocol.dumps(body_data))


def _query_code(service_model: Any, code: str) -> str:
    """The code query clients match: the shape's ``error.code`` trait, SQS's legacy code."""
    if service_model is None:
        return code
    if service_model.metadata.get("endpointPrefix") == "sqs":
        return SQS_QUERY_CODES.get(code, code)
    if code in service_model.shape_names:
        shape = service_model.shape_for(code)
        if shape.metadata.get("exception"):
            return shape.metadata.get("error", {}).get("code", code)
    return code


def _query(service_model: Any, err: AWSError, request_id: str) -> HttpResponse:
    namespace = query.service_namespace(service_model) if service_model is not None else None
    xmlns = f' xmlns="{escape_attr(namespace)}"' if namespace else ""
    code = _query_code(service_model, err.code)
    xml = [
        f"<ErrorResponse{xmlns}><Error>",
        f"<Type>{_fault(err)}</Type>",
        f"<Code>{escape_text(code)}</Code>",
        f"<Message>{escape_text(err.message)}</Message>",
    ]
    xml.extend(_extra_elements(err))
    xml.append(f"</Error><RequestId>{escape_text(request_id)}</RequestId></ErrorResponse>")
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", query.QUERY_CONTENT_TYPE)]
    return HttpResponse(status=err.status, headers=headers, body=document(xml))


def _ec2(err: AWSError, request_id: str) -> HttpResponse:
    xml = [
        "<Response><Errors><Error>",
        f"<Code>{escape_text(err.code)}</Code>",
        f"<Message>{escape_text(err.message)}</Message>",
    ]
    xml.extend(_extra_elements(err))
    xml.append(f"</Error></Errors><RequestID>{escape_text(request_id)}</RequestID></Response>")
    headers = [("Content-Type", ec2.EC2_CONTENT_TYPE)]
    return HttpResponse(status=err.status, headers=headers, body=document(xml))

