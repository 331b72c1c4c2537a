"""Incidents and reports written straight to the database, with exact times and states."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import shapely

from app.incidents.models import Incident
from app.reports.models import Report
from tests.conftest import Harness

POINT = {"330106001001": (120.02, 30.02), "330106001002": (120.02, 30.08)}
POINT |= {"330106002001": (120.08, 30.02), "330106002002": (120.08, 30.08)}
RESOLVE_MINUTES = {"open_burning": 120, "cured_meat_smoking": 1440}


def utc(text: str) -> datetime:
    """`2026-11-02T17:00` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def make_incident(
    h: Harness,
    village: str,
    opened: str,
    status: str,
    *,
    category: str = "open_burning",
    acknowledge_s: float | None = None,
    resolve_s: float | None = None,
    due: datetime | None = None,
    rework: int = 0,
    penalty: tuple[str, str] | None = None,
) -> str:
    """An incident of `village` opened at `opened` (UTC) in `status`; times in seconds after
    opening. `due` defaults to 15 minutes after opening; `penalty` is (kind, yuan)."""
    opened_at = utc(opened)
    lon, lat = POINT[village]
    resolved_at = opened_at + timedelta(seconds=resolve_s) if resolve_s is not None else None
    closed_at = resolved_at + timedelta(minutes=5) if resolved_at and status == "closed" else None
    incident = Incident(
        case_number=f"{village[:6]}-2026-{uuid.uuid4().hex[:10]}",
        district_code=village[:6],
        township_code=village[:9],
        village_code=village,
        category=category,
        status=status,
        lon=lon,
        lat=lat,
        location=shapely.Point(lon, lat),
        opened_at=opened_at,
        updated_at=opened_at,
        last_observed_at=opened_at,
        due_at=due or opened_at + timedelta(minutes=15),
        acknowledged_at=(
            opened_at + timedelta(seconds=acknowledge_s) if acknowledge_s is not None else None
        ),
        arrived_at=resolved_at - timedelta(minutes=1) if resolved_at else None,
        resolved_at=resolved_at,
        verified_at=closed_at,
        closed_at=closed_at,
        resolve_due_at=opened_at + timedelta(minutes=RESOLVE_MINUTES[category]),
        rework_count=rework,
        outcome=("penalized" if penalty else "extinguished") if resolved_at else None,
        penalty_kind=penalty[0] if penalty else None,
        penalty_amount_yuan=Decimal(penalty[1]) if penalty else None,
        legal_basis="《大气污染防治法》第一百一十九条" if penalty else None,
        report_count=1,
    )
    async with h.db.write() as session:
        session.add(incident)
    return incident.id


async def make_report(h: Harness, incident_id: str, village: str, observed: str) -> None:
    """A report of `village` observed at `observed` (UTC), joined to the incident."""
    observed_at = utc(observed)
    lon, lat = POINT[village]
    report = Report(
        district_code=village[:6],
        township_code=village[:9],
        village_code=village,
        category="open_burning",
        material="straw",
        lon=lon,
        lat=lat,
        location=shapely.Point(lon, lat),
        submitted_lon=lon,
        submitted_lat=lat,
        submitted_crs="wgs84",
        observed_at=observed_at,
        received_at=observed_at + timedelta(seconds=30),
        reporter_kind="user",
        reporter_id=uuid.uuid4().hex,
        reporter_name="网格员",
        incident_id=incident_id,
    )
    async with h.db.write() as session:
        session.add(report)
