"""GeoReport v2's XML: the same documents as the JSON resources, in the specification's element
names (a list is an element of its own name holding one element per item)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from fastapi.responses import Response

XML = "application/xml"
# Each list's element, and the element of each of its items, as the specification names them.
_ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}


def document(root: str, body: Any) -> bytes:
    """`body` (a list or a mapping of plain values) as the XML document `<root>`."""
    element = Element(root)
    _fill(element, root, body)
    declaration = b'<?xml version="1.0" encoding="utf-8"?>\n'
    return declaration + tostring(element, encoding="unicode").encode()


def response(root: str, body: Any, status_code: int = 200) -> Response:
    return Response(document(root, body), status_code=status_code, media_type=XML)


def _fill(element: Element, tag: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(SubElement(element, str(key)), str(key), item)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for item in value:
            _fill(SubElement(element, _ITEM.get(tag, "item")), tag, item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
