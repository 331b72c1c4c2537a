"""Who may see an incident or a report: jurisdiction by role, agency and cell."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from sqlalchemy import exists, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.principal import Principal
from app.incidents.models import Incident
from app.reports.models import Report

_REPORTS = Report.__table__  # type: ignore[attr-defined]


class Placed(Protocol):
    """Anything located in a village of the grid."""

    district_code: str
    township_code: str
    village_code: str


def in_cell(cell_code: str | None, thing: Placed) -> bool:
    """Whether the cell is the thing's village, township or district."""
    return cell_code is not None and cell_code in (
        thing.village_code,
        thing.township_code,
        thing.district_code,
    )


def is_reporter(principal: Principal, report: Report) -> bool:
    return report.reporter_kind == principal.kind and report.reporter_id == principal.id


async def may_see_incident(
    session: AsyncSession, principal: Principal, incident: Incident, agencies: Collection[str]
) -> bool:
    """Admins; officers of an assigned agency; supervisors over its cell; grid workers of its
    village; API keys with incidents:read within their cell; and whoever reported it."""
    if principal.is_admin:
        return True
    if principal.has_role("officer") and principal.agency_code in agencies:
        return True
    if principal.has_role("supervisor") and in_cell(principal.cell_code, incident):
        return True
    if principal.has_role("grid_worker") and principal.cell_code == incident.village_code:
        return True
    if principal.has_scope("incidents:read") and (
        principal.cell_code is None or in_cell(principal.cell_code, incident)
    ):
        return True
    reported = select(
        exists().where(
            _REPORTS.c.incident_id == incident.id,
            _REPORTS.c.reporter_kind == principal.kind,
            _REPORTS.c.reporter_id == principal.id,
        )
    )
    return bool((await (await session.connection()).execute(reported)).scalar())


def may_see_report(principal: Principal, report: Report, agencies: Collection[str]) -> bool:
    """The reporter, admins, officers of the incident's agencies, supervisors over its cell."""
    if is_reporter(principal, report) or principal.is_admin:
        return True
    if principal.has_role("officer") and principal.agency_code in agencies:
        return True
    return principal.has_role("supervisor") and in_cell(principal.cell_code, report)
