"""Answers in the coordinate system the caller asks for: `?crs=gcj02` (AMap, Tencent) or `bd09`
(Baidu), converted from the stored WGS-84 by geo.crs, so that a map SDK can draw them as they
are. `wgs84` (the default) changes nothing.

A route that answers positions takes the `crs` parameter (`OutputCrsDep`, which documents and
validates it); its JSON and GeoJSON answers are converted on the way out by `AnswerInCrs`, in
one place: every `{lon, lat}` position and every GeoJSON geometry. A report's
`submitted_location` stays as it was sent, since it names its own `crs`. CSV and Open311 convert
as they write their rows.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo import crs as geo_crs

Crs = Literal["wgs84", "gcj02", "bd09"]
WGS84: Crs = "wgs84"
_SCOPE_KEY = "burnban.answer_crs"
_JSON_TYPES = (b"application/json", b"application/geo+json")
_KEPT = frozenset({"submitted_location"})
_GEOMETRIES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


async def answer_crs(
    request: Request,
    crs: Annotated[
        Crs,
        Query(
            description="The coordinate system of the positions in the answer: wgs84 "
            "(default), gcj02 (AMap, Tencent) or bd09 (Baidu)"
        ),
    ] = WGS84,
) -> Crs:
    request.scope[_SCOPE_KEY] = crs
    return crs


OutputCrsDep = Annotated[Crs, Depends(answer_crs)]


def point(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """A stored WGS-84 position in `crs`, to 7 decimals (~1 cm) as stored positions are."""
    if crs == WGS84:
        return lon, lat
    x, y = geo_crs.from_wgs84(lon, lat, crs)
    return round(x, 7), round(y, 7)


def convert(value: Any, crs: str) -> Any:
    """`value` (decoded JSON) with every position and geometry in `crs`."""
    if isinstance(value, list):
        return [convert(item, crs) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") in _GEOMETRIES and "coordinates" in value:
        return {**value, "coordinates": _coordinates(value["coordinates"], crs)}
    if _is_position(value):
        lon, lat = point(value["lon"], value["lat"], crs)
        return {**value, "lon": lon, "lat": lat}
    return {key: item if key in _KEPT else convert(item, crs) for key, item in value.items()}


def _is_position(value: dict[str, Any]) -> bool:
    return (
        "crs" not in value
        and isinstance(value.get("lon"), int | float)
        and isinstance(value.get("lat"), int | float)
    )


def _coordinates(value: Any, crs: str) -> Any:
    if (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, int | float) for v in value[:2])
    ):
        return [*point(value[0], value[1], crs), *value[2:]]
    if isinstance(value, list):
        return [_coordinates(item, crs) for item in value]
    return value


class AnswerInCrs:
    """ASGI middleware converting JSON and GeoJSON answers of routes asked for another `crs`.
    Answers of routes that did not take the parameter, or asked for WGS-84, pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"crs=" not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def converting_send(message: Message) -> None:
            nonlocal start
            crs = scope.get(_SCOPE_KEY, WGS84)
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if crs == WGS84 or not content_type.startswith(_JSON_TYPES):
                    scope[_SCOPE_KEY] = WGS84  # nothing to convert: pass the body through
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            converted = convert(json.loads(b"".join(chunks)), crs)
            body = json.dumps(converted, ensure_ascii=False, separators=(",", ":")).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, converting_send)
