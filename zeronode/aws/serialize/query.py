"""query-protocol responses (ELBv2, and SQS for clients that still speak the query protocol).

    <CreateLoadBalancerResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
      <CreateLoadBalancerResult> ...members... </CreateLoadBalancerResult>
      <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
    </CreateLoadBalancerResponse>

The wrapper is the output's ``resultWrapper`` (``<Operation>Result`` when the model has
none, as with the SQS model botocore now ships for JSON); an operation without an output
sends only the ``ResponseMetadata``. Lists are ``member`` lists unless the model flattens
them or names their items (:mod:`xml_body`). The namespace is the model's ``xmlNamespace``;
SQS's JSON model has none, so SQS's historical one is used. ``Content-Type`` is ``text/xml``
as AWS sends it for these services.
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize.xml_body import XmlBodyWriter, document, escape_attr, escape_text

SQS_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
QUERY_CONTENT_TYPE = "text/xml"


def service_namespace(service_model: Any) -> str:
    namespace = service_model.metadata.get("xmlNamespace")
    if namespace:
        return namespace
    if service_model.metadata.get("endpointPrefix") == "sqs":
        return SQS_NAMESPACE
    prefix = service_model.metadata.get("endpointPrefix", "aws")
    return f"http://{prefix}.amazonaws.com/doc/{service_model.metadata.get('apiVersion', '')}/"


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    service_model = operation_model.service_model
    namespace = service_namespace(service_model)
    name = operation_model.name
    shape = operation_model.output_shape
    xml = [f'<{name}Response xmlns="{escape_attr(namespace)}">']
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        xml.append(f"<{wrapper}>")
        XmlBodyWriter(namespace).members(xml, shape, output)
        xml.append(f"</{wrapper}>")
    xml.append(
        f"<ResponseMetadata><RequestId>{escape_text(request_id)}</RequestId></ResponseMetadata>"
    )
    xml.append(f"</{name}Response>")
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", QUERY_CONTENT_TYPE)]
    return HttpResponse(status=200, headers=headers, body=document(xml))
