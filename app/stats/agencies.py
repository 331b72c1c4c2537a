"""An agency's scorecard (考核 of a unit) over a period: the incidents assigned to it, by the
cell scorecard's definitions (app/stats/service.py), and its own steps' timeliness.

Definitions — "the agency's incidents" are those assigned to it (any role), opened in [from, to),
and within the caller's reach (a supervisor's cell, a cell-limited key's cell); every count and
rate over them is the cell scorecard's. Its own part, over its assignments to those incidents:
- `acknowledged`, `acknowledged_on_time`: its assignments acknowledged, and those at or before
  their acknowledge limit; `own_acknowledge_on_time_rate` = on time / acknowledged;
- `arrived`, `arrived_on_time`, `own_arrive_on_time_rate`: the same for its arrival;
- `overdue_now`: its incidents still being worked whose acknowledgement or arrival by this
  agency is past its limit (the rule of an assignment's `overdue`).
Assignments made before their limits were recorded count as acknowledged or arrived, never as
on time. Rates are null when their denominator is 0.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.categories.models import Category
from app.dbtypes import UtcDateTime
from app.incidents import access
from app.incidents.access import ASSIGNMENTS, INCIDENTS
from app.incidents.models import STATUSES, WORKING_STATUSES
from app.reports.models import Report
from app.stats import service as cell_stats
from app.stats.schemas import AgencyRef, AgencyScorecard, Durations, OwnSteps, Penalties, Period
from app.stats.sql import PeriodCounts, StatsSql

_REPORTS = Report.__table__  # type: ignore[attr-defined]
_CATEGORIES = Category.__table__  # type: ignore[attr-defined]


async def scorecard(
    session: AsyncSession,
    sql: StatsSql,
    principal: Principal,
    code: str,
    period: Period,
    now: datetime,
) -> AgencyScorecard:
    """The agency's scorecard over `period`, counted within the caller's reach."""
    period = cell_stats.check_period(period)
    agency = await session.get(Agency, code)
    if agency is None:
        raise errors.NotFound(f"no agency {code!r}")
    if principal.has_role("officer") and principal.agency_code != code:
        raise errors.Forbidden("an officer reads the scorecard of the own agency only")
    conn = await session.connection()
    c = INCIDENTS.c
    reach = await access.visible(session, principal)
    theirs = and_(access.assigned_to(code), reach)
    in_period = (c.opened_at >= period.start) & (c.opened_at < period.end)
    categories = sorted((await conn.execute(select(_CATEGORIES.c.code))).scalars())
    figures = await sql.read_period(
        conn,
        PeriodCounts(
            where=theirs & in_period,
            counts=cell_stats.counts_of(categories),
            child=c.township_code,
            children=[],
            child_counts=(),
            durations=cell_stats.DURATIONS,
            fractions=cell_stats.FRACTIONS,
        ),
    )
    total = figures.totals
    closed, rejected = total["n_closed"], total["n_rejected"]
    (ack_median, ack_p90), (res_median, res_p90) = figures.percentiles
    supervised, supervised_closed, supervised_on_time = (
        await conn.execute(cell_stats.supervised_counts(theirs & in_period))
    ).one()
    return AgencyScorecard(
        agency=AgencyRef(code=agency.code, name=agency.name, kind=agency.kind),
        from_=period.start,
        to=period.end,
        reports=await _reports(conn, theirs, period),
        incidents=total["incidents"],
        by_status={status: total[f"n_{status}"] for status in STATUSES},
        by_category={code: total[f"category_{i}"] for i, code in enumerate(categories)},
        acknowledge_seconds=Durations(median=ack_median, p90=ack_p90),
        resolve_seconds=Durations(median=res_median, p90=res_p90),
        closure_rate=cell_stats.ratio(closed, total["incidents"] - rejected),
        on_time_rate=cell_stats.ratio(total["on_time"], closed),
        rework_rate=cell_stats.ratio(int(total["rework"]), closed),
        overdue_open=await _overdue_open(conn, theirs, period, now),
        penalties=Penalties(
            warning=total["warnings"],
            fine=total["fines"],
            fine_yuan=Decimal(str(total["fine_yuan"])),
        ),
        voided=rejected,
        returned=total["n_returned"],
        supervised=int(supervised),
        supervised_on_time_rate=cell_stats.ratio(int(supervised_on_time), int(supervised_closed)),
        own=await _own_steps(conn, code, reach & in_period, now),
        rate_definitions=cell_stats.RATE_DEFINITIONS,
    )


async def _reports(conn: Any, theirs: ColumnElement[bool], period: Period) -> int:
    """Reports observed in the period that joined one of the agency's incidents."""
    r = _REPORTS.c
    query = (
        select(func.count())
        .select_from(_REPORTS.join(INCIDENTS, INCIDENTS.c.id == r.incident_id))
        .where(theirs, r.observed_at >= period.start, r.observed_at < period.end)
    )
    return int((await conn.execute(query)).scalar_one())


async def _overdue_open(
    conn: Any, theirs: ColumnElement[bool], period: Period, now: datetime
) -> int:
    """The cell scorecard's overdue_open over the agency's incidents."""
    c = INCIDENTS.c
    query = select(func.count()).where(
        theirs,
        c.opened_at < period.end,
        c.status.in_(WORKING_STATUSES),
        c.due_at < literal(now, UtcDateTime()),
    )
    return int((await conn.execute(query)).scalar_one())


async def _own_steps(
    conn: Any, code: str, incidents: ColumnElement[bool], now: datetime
) -> OwnSteps:
    own = ASSIGNMENTS.alias("own")  # apart from the assignments `incidents` may ask about
    a, c = own.c, INCIDENTS.c
    at = literal(now, UtcDateTime())
    late_now = or_(
        and_(a.acknowledged_at.is_(None), a.acknowledge_due_at < at),
        and_(a.arrived_at.is_(None), a.arrive_due_at < at),
    )
    query = (
        select(
            func.count().filter(a.acknowledged_at.is_not(None)).label("acknowledged"),
            func.count().filter(a.acknowledged_at <= a.acknowledge_due_at).label("ack_on_time"),
            func.count().filter(a.arrived_at.is_not(None)).label("arrived"),
            func.count().filter(a.arrived_at <= a.arrive_due_at).label("arrive_on_time"),
            func.count().filter(c.status.in_(WORKING_STATUSES), late_now).label("overdue_now"),
        )
        .select_from(own.join(INCIDENTS, INCIDENTS.c.id == a.incident_id))
        .where(a.agency_code == code, incidents)
    )
    row = (await conn.execute(query)).one()
    return OwnSteps(
        acknowledged=int(row.acknowledged),
        acknowledged_on_time=int(row.ack_on_time),
        own_acknowledge_on_time_rate=cell_stats.ratio(int(row.ack_on_time), int(row.acknowledged)),
        arrived=int(row.arrived),
        arrived_on_time=int(row.arrive_on_time),
        own_arrive_on_time_rate=cell_stats.ratio(int(row.arrive_on_time), int(row.arrived)),
        overdue_now=int(row.overdue_now),
    )
