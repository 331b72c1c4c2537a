"""Content negotiation between JSON, GeoJSON and CSV answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

GEOJSON = "application/geo+json"
CSV = "text/csv"
FORMATS = {"application/json": "json", GEOJSON: "geojson", CSV: "csv"}


def accepted(request: Request, offered: Iterable[str]) -> str | None:
    """The format (`json`, `geojson`, `csv`) of the offered one the Accept header prefers most
    (highest q; the earlier in the header on a tie); None when it names none of them."""
    offered = set(offered)
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        name = FORMATS.get(media.lower())
        if name is None or name not in offered:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > best[:2]):
            best = (quality, -position, name)
    return None if best is None else best[2]


def wants_geojson(request: Request) -> bool:
    """`?format=geojson`, or an Accept header preferring application/geo+json to JSON."""
    if request.query_params.get("format") == "geojson":
        return True
    return accepted(request, ("json", "geojson")) == "geojson"


def geojson_response(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=GEOJSON)
