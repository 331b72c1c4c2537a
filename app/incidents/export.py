"""Incident lists as GeoJSON and as CSV streamed from the database in keyset chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from app import crsout, i18n
from app.clock import CHINA
from app.db import Database
from app.incidents import queries
from app.incidents.output import is_overdue
from app.incidents.queries import IncidentQuery, Listing, Row
from app.incidents.schemas import IncidentOut

CSV_CHUNK = 1000
CSV_COLUMNS = (
    "id",
    "case_number",
    "category",
    "status",
    "version",
    "lon",
    "lat",
    "district_code",
    "district_name",
    "township_code",
    "township_name",
    "village_code",
    "village_name",
    "opened_at",
    "updated_at",
    "due_at",
    "overdue",
    "acknowledged_at",
    "arrived_at",
    "resolved_at",
    "verified_at",
    "closed_at",
    "resolve_due_at",
    "report_count",
    "rework_count",
    "responsible",
    "lead",
    "cooperating",
    "outcome",
    "penalty_kind",
    "penalty_amount_yuan",
    "legal_basis",
)
# Excel, which supervisors open exports in, reads UTF-8 (and so Chinese names) only after a BOM.
BOM = "\ufeff"


def feature(item: IncidentOut) -> dict[str, Any]:
    """An RFC 7946 Feature: the point, and the item without its location as properties."""
    properties = item.model_dump(mode="json", exclude={"location"})
    return {
        "type": "Feature",
        "id": item.id,
        "geometry": {"type": "Point", "coordinates": [item.location.lon, item.location.lat]},
        "properties": properties,
    }


def feature_collection(items: Sequence[IncidentOut], next_cursor: str | None) -> dict[str, Any]:
    """A FeatureCollection of one page; `next_cursor` rides along as a foreign member."""
    return {
        "type": "FeatureCollection",
        "features": [feature(item) for item in items],
        "next_cursor": next_cursor,
    }


async def csv_stream(
    db: Database,
    listing: Listing,
    query: IncidentQuery,
    now: datetime,
    crs: str = "wgs84",
    locale: str = i18n.ENGLISH,
) -> AsyncIterator[str]:
    """The header (in the caller's language), then one chunk of rows at a time, read in a unit
    of work of its own (the request's has ended by the time the body is sent)."""
    yield BOM + _line([i18n.gettext(locale, column) for column in CSV_COLUMNS])
    async with db.read(ceiling=db.export_timeout) as session:
        async for rows in queries.chunks(session, listing, query, now, CSV_CHUNK):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerows(csv_row(row, now, crs) for row in rows)
            yield buffer.getvalue()


def _line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


def csv_row(row: Row, now: datetime, crs: str = "wgs84") -> list[str]:
    i, cell = row.incident, row.located
    lon, lat = crsout.point(i.lon, i.lat, crs)
    by_role: dict[str, list[str]] = {"responsible": [], "lead": [], "cooperating": []}
    for a in row.assignments:
        by_role.setdefault(a.role, []).append(a.agency.code)
    return [
        i.id,
        i.case_number,
        i.category,
        i.status,
        str(i.version),
        repr(lon),
        repr(lat),
        cell.district.code,
        cell.district.name,
        cell.township.code,
        cell.township.name,
        cell.village.code,
        cell.village.name,
        _time(i.opened_at),
        _time(i.updated_at),
        _time(i.due_at),
        "true" if is_overdue(i, now) else "false",
        _time(i.acknowledged_at),
        _time(i.arrived_at),
        _time(i.resolved_at),
        _time(i.verified_at),
        _time(i.closed_at),
        _time(i.resolve_due_at),
        str(i.report_count),
        str(i.rework_count),
        ";".join(by_role["responsible"]),
        ";".join(by_role["lead"]),
        ";".join(by_role["cooperating"]),
        i.outcome or "",
        i.penalty_kind or "",
        "" if i.penalty_amount_yuan is None else f"{i.penalty_amount_yuan:.2f}",
        i.legal_basis or "",
    ]


def _time(value: datetime | None) -> str:
    """RFC 3339 in China time with its offset (`2026-11-20T10:00:00+08:00`): what the people
    opening an export in Excel read their day in, and still one instant for a program."""
    if value is None:
        return ""
    return value.astimezone(CHINA).isoformat()
