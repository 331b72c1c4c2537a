"""Who may see an incident or a report: jurisdiction by role, agency and cell."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Table, exists, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.grid.models import CELLS
from app.incidents.models import Assignment, Incident
from app.reports.models import Report

_REPORTS = Report.__table__  # type: ignore[attr-defined]
INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
ASSIGNMENTS: Table = Assignment.__table__  # type: ignore[attr-defined]
AGENCIES: Table = Agency.__table__  # type: ignore[attr-defined]
_CODE_COLUMN = {"district": "district_code", "township": "township_code", "village": "village_code"}


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


@dataclass(frozen=True)
class CellScope:
    """A grid cell as a filter on incidents: the cell and everything under it."""

    code: str
    level: str
    lineage: tuple[str, ...]  # the cell's own code and those of the cells above it

    def condition(self) -> ColumnElement[bool]:
        """Incidents in the cell: one equality on the column of the cell's level, which the
        (<level>_code, opened_at, id) index answers in list order."""
        return INCIDENTS.c[_CODE_COLUMN[self.level]] == self.code

    def is_under(self, cell_code: str | None) -> bool:
        return cell_code is not None and cell_code in self.lineage


async def cell_scope(session: AsyncSession, code: str) -> CellScope | None:
    conn = await session.connection()
    query = select(CELLS.c.level, CELLS.c.parent_code, CELLS.c.district_code).where(
        CELLS.c.code == code
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    level, parent, district = str(row[0]), row[1], str(row[2])
    lineage = dict.fromkeys(c for c in (code, parent, district) if c is not None)
    return CellScope(code, level, tuple(lineage))


def assigned_to(agency_code: str) -> ColumnElement[bool]:
    """Incidents assigned to the agency (EXISTS on the (agency_code, incident_id) index)."""
    return exists().where(
        ASSIGNMENTS.c.incident_id == INCIDENTS.c.id, ASSIGNMENTS.c.agency_code == agency_code
    )


def reported_by(principal: Principal) -> ColumnElement[bool]:
    return exists().where(
        _REPORTS.c.incident_id == INCIDENTS.c.id,
        _REPORTS.c.reporter_kind == principal.kind,
        _REPORTS.c.reporter_id == principal.id,
    )


def covers(principal: Principal, cell: CellScope) -> bool:
    """Whether the caller sees every incident under the cell (so no other filter is needed)."""
    if principal.is_admin:
        return True
    if principal.has_role("supervisor"):
        return cell.is_under(principal.cell_code)
    return principal.has_scope("incidents:read") and (
        principal.cell_code is None or cell.is_under(principal.cell_code)
    )


async def reaches(session: AsyncSession, principal: Principal, cell: CellScope) -> bool:
    """Whether a cell is within the caller's jurisdiction; one outside it is refused (403) on
    every cell route. Admins and keys limited to no cell reach every cell; supervisors and
    cell-limited keys their cell and the cells under it; grid workers their village and the
    cells above it; officers their agency's cell and the cells above and under it (an agency
    bound to no cell, everywhere). What a caller sees in a cell it reaches is still only what
    it may see (`visible`)."""
    if principal.is_admin or (principal.kind == "api_key" and not principal.cell_code):
        return True
    if is_cell_bound_reader(principal):
        return cell.is_under(principal.cell_code)
    home = principal.cell_code
    if principal.has_role("officer"):
        if principal.agency_code is None:
            return False
        home = await _agency_cell(session, principal.agency_code)
        if home is None:
            return True
        if cell.is_under(home):
            return True
    if home is None:
        return False
    home_scope = await cell_scope(session, home)
    return home_scope is not None and cell.code in home_scope.lineage


async def _agency_cell(session: AsyncSession, agency_code: str) -> str | None:
    query = select(AGENCIES.c.cell_code).where(AGENCIES.c.code == agency_code)
    cell_code = (await (await session.connection()).execute(query)).scalar()
    return None if cell_code is None else str(cell_code)


def is_cell_bound_reader(principal: Principal) -> bool:
    """Supervisors and cell-limited API keys read by cell: a cell outside theirs is not found."""
    return principal.has_role("supervisor") or (
        principal.has_scope("incidents:read") and principal.cell_code is not None
    )


async def visible(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The incidents the caller may see, as SQL: the same rules as may_see_incident."""
    if principal.is_admin:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if principal.has_role("officer") and principal.agency_code:
        clauses.append(assigned_to(principal.agency_code))
    if principal.has_role("supervisor") and principal.cell_code:
        scope = await cell_scope(session, principal.cell_code)
        if scope is not None:
            clauses.append(scope.condition())
    if principal.has_role("grid_worker") and principal.cell_code:
        clauses.append(INCIDENTS.c.village_code == principal.cell_code)
    if principal.has_scope("incidents:read"):
        if principal.cell_code is None:
            return true()
        scope = await cell_scope(session, principal.cell_code)
        if scope is not None:
            clauses.append(scope.condition())
    if principal.has_role("grid_worker") or principal.has_scope("reports:write"):
        clauses.append(reported_by(principal))
    if not clauses:
        raise errors.Forbidden("your role or key does not allow reading incidents")
    return clauses[0] if len(clauses) == 1 else or_(*clauses)
