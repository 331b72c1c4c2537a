"""The query parameters of incident lists: one typed dependency shared by every list route."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query

from app import errors
from app.incidents.queries import IncidentQuery, check_statuses
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT

MAX_RADIUS_M = 100_000.0


@dataclass
class IncidentFilters:
    """Filters, order, page and format of an incident list (`?format=` or Accept decides)."""

    status: Annotated[
        list[str] | None, Query(description="Repeatable: `status=dispatched&status=on_site`")
    ] = None
    category: Annotated[str | None, Query(max_length=40, description="Category code")] = None
    opened_from: Annotated[
        datetime | None,
        Query(alias="from", description="Opened at or after (RFC 3339 with offset)"),
    ] = None
    opened_to: Annotated[
        datetime | None, Query(alias="to", description="Opened before (RFC 3339 with offset)")
    ] = None
    bbox: Annotated[str | None, Query(description="`minlon,minlat,maxlon,maxlat` (WGS-84)")] = None
    near: Annotated[str | None, Query(description="`lon,lat` (WGS-84); needs radius_m")] = None
    radius_m: Annotated[
        float | None, Query(gt=0, le=MAX_RADIUS_M, description="Metres around `near`")
    ] = None
    overdue: Annotated[
        bool | None, Query(description="Working incidents past their next step's due time")
    ] = None
    agency: Annotated[str | None, Query(max_length=40, description="Assigned to this agency")] = (
        None
    )
    supervised: Annotated[
        bool | None, Query(description="督办: `true` supervised incidents, `false` the others")
    ] = None
    order: Annotated[
        Literal["desc", "asc"], Query(description="On opened_at; newest first by default")
    ] = "desc"
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None
    output: Annotated[
        Literal["json", "geojson", "csv"] | None,
        Query(alias="format", description="Or `Accept: application/geo+json` or `text/csv`"),
    ] = None

    def query(self) -> IncidentQuery:
        """The filters checked and parsed; a malformed one is a validation error."""
        for name, value in (("from", self.opened_from), ("to", self.opened_to)):
            if value is not None and value.tzinfo is None:
                raise _invalid(name, "a time needs an offset, e.g. 2026-11-20T10:00:00+08:00")
        near = None
        if (self.near is None) != (self.radius_m is None):
            raise _invalid("radius_m", "near and radius_m go together")
        if self.near is not None and self.radius_m is not None:
            lon, lat = _numbers("near", self.near, 2)
            _check_point("near", lon, lat)
            near = (lon, lat, self.radius_m)
        bbox = None
        if self.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = _numbers("bbox", self.bbox, 4)
            _check_point("bbox", min_lon, min_lat)
            _check_point("bbox", max_lon, max_lat)
            if min_lon > max_lon or min_lat > max_lat:
                raise _invalid("bbox", "bbox is minlon,minlat,maxlon,maxlat")
            bbox = (min_lon, min_lat, max_lon, max_lat)
        return IncidentQuery(
            statuses=check_statuses(self.status or []),
            category=self.category,
            opened_from=self.opened_from,
            opened_to=self.opened_to,
            bbox=bbox,
            near=near,
            overdue=self.overdue,
            agency=self.agency,
            supervised=self.supervised,
            ascending=self.order == "asc",
        )


def _numbers(name: str, raw: str, count: int) -> list[float]:
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise _invalid(name, f"{name} needs {count} comma-separated numbers")
    return values


def _check_point(name: str, lon: float, lat: float) -> None:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise _invalid(name, "longitude within ±180 and latitude within ±90")


def _invalid(name: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(msg, errors=[{"loc": ["query", name], "msg": msg}])
