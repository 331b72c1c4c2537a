"""Content negotiation between JSON, GeoJSON and CSV answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

GEOJSON = "application/geo+json"
CSV = "text/csv"
FORMATS = {"application/json": "json", GEOJSON: "geojson", CSV: "csv"}


def by_preference(header: str | None) -> list[str]:
    """The values of an Accept-style header (Accept, Accept-Language), most preferred first:
    highest q, then the earlier in the header; those with q=0 left out."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        value, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, number = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if value and quality > 0:
            weighted.append((-quality, position, value))
    return [value for _, _, value in sorted(weighted)]


def accepted(request: Request, offered: Iterable[str]) -> str | None:
    """The format (`json`, `geojson`, `csv`) of the offered one the Accept header prefers most
    (highest q; the earlier in the header on a tie); None when it names none of them."""
    offered = set(offered)
    for media in by_preference(request.headers.get("accept")):
        name = FORMATS.get(media.lower())
        if name is not None and name in offered:
            return name
    return None


def wants_geojson(request: Request) -> bool:
    """`?format=geojson`, or an Accept header preferring application/geo+json to JSON."""
    if request.query_params.get("format") == "geojson":
        return True
    return accepted(request, ("json", "geojson")) == "geojson"


def geojson_response(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=GEOJSON)
