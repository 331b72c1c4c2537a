"""Content negotiation between JSON, GeoJSON and CSV answers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

GEOJSON = "application/geo+json"


def wants_geojson(request: Request) -> bool:
    """`?format=geojson` or an Accept header naming application/geo+json."""
    if request.query_params.get("format") == "geojson":
        return True
    return GEOJSON in request.headers.get("accept", "")


def geojson_response(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=GEOJSON)
