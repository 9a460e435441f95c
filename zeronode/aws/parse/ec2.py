"""EC2-protocol requests: the query protocol with EC2's own names and lists.

botocore's ``EC2Serializer`` differs from the query serializer in two ways, and so does this
parser (:mod:`.query` does the rest):

* a member's wire name is its ``queryName``, else its ``locationName`` with the first letter
  upper-cased (``groupId`` -> ``GroupId``), else the member name;
* every list is ``Name.1``, ``Name.2``... with no ``.member`` level, whatever the model says
  about flattening, and an empty list is not sent at all.
"""

from __future__ import annotations

from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.parse import RequestParts
from zeronode.aws.parse.query import ParamTree, QueryDecoder

__all__ = ["parse"]


class EC2Decoder(QueryDecoder):
    ec2 = True

    def wire_name(self, member: Shape, default: str) -> str:
        ser = member.serialization
        if "queryName" in ser:
            return str(ser["queryName"])
        if "name" in ser:
            name = str(ser["name"])
            return name[0].upper() + name[1:]
        return default


def parse(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    shape = operation_model.input_shape
    if shape is None:
        return {}
    return EC2Decoder().structure(shape, ParamTree.from_pairs(parts.query), "")
