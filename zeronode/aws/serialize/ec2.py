"""ec2-protocol responses.

    <DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>...</requestId>
      <vpcSet><item>...</item></vpcSet>
    </DescribeVpcsResponse>

Unlike the query protocol there is no ``Result`` wrapper and no ``ResponseMetadata``: the
request id is the first child, ``requestId``. Element names are the members'
``locationName`` (lower camel case in the EC2 model: ``vpcSet``, ``cidrBlock``) and list
items are ``item``, both straight from the model. The namespace is the model's
``xmlNamespace`` with the trailing slash EC2 puts on it.
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize.xml_body import XmlBodyWriter, document, escape_attr, escape_text

EC2_CONTENT_TYPE = "text/xml;charset=UTF-8"


def service_namespace(service_model: Any) -> str:
    namespace = service_model.metadata.get("xmlNamespace") or (
        f"http://ec2.amazonaws.com/doc/{service_model.metadata.get('apiVersion', '2016-11-15')}/"
    )
    return namespace if namespace.endswith("/") else namespace + "/"


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    namespace = service_namespace(operation_model.service_model)
    name = operation_model.name
    xml = [
        f'<{name}Response xmlns="{escape_attr(namespace)}">',
        f"<requestId>{escape_text(request_id)}</requestId>",
    ]
    shape = operation_model.output_shape
    if shape is not None:
        XmlBodyWriter(namespace).members(xml, shape, output)
    else:
        # Operations without an output shape still say they succeeded, as EC2 does.
        xml.append("<return>true</return>")
    xml.append(f"</{name}Response>")
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", EC2_CONTENT_TYPE)]
    return HttpResponse(status=200, headers=headers, body=document(xml))
