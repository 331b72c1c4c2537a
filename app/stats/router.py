"""HTTP route of the scorecard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.principal import Principal
from app.deps import ClockDep, DatabaseDep, SessionDep, require
from app.stats import agencies, service
from app.stats.schemas import AgencyScorecard, Period, Scorecard
from app.stats.sql import Interval, StatsSql, sql_for

router = APIRouter(tags=["statistics"])

StatsReaderDep = Annotated[
    Principal, Depends(require("officer", "supervisor", "admin", scope="incidents:read"))
]


async def get_stats_sql(db: DatabaseDep) -> StatsSql:
    return sql_for(db.dialect)


PeriodStart = Annotated[
    str | None,
    Query(
        alias="from",
        description="A date (2026-11-01: that China day's start) or an RFC 3339 time with "
        "an offset. Neither from nor to: the current China month",
        examples=["2026-11-01"],
    ),
]
PeriodEnd = Annotated[
    str | None,
    Query(
        alias="to",
        description="A date (2026-11-30: to the end of that China day) or an RFC 3339 time "
        "with an offset (excluded). Left out: now",
        examples=["2026-11-30"],
    ),
]


async def get_period(
    clock: ClockDep,
    start: PeriodStart = None,
    end: PeriodEnd = None,
    interval: Annotated[
        Interval | None, Query(description="add a series per UTC+8 day, week or month")
    ] = None,
) -> Period:
    return service.period_of(start, end, interval, clock.now())


@router.get("/cells/{code}/stats", operation_id="get_cell_stats", response_model=Scorecard)
async def get_cell_stats(
    code: str,
    session: SessionDep,
    clock: ClockDep,
    principal: StatsReaderDep,
    sql: Annotated[StatsSql, Depends(get_stats_sql)],
    period: Annotated[Period, Depends(get_period)],
) -> Scorecard:
    """The scorecard (考核) of a cell over [from, to), within the caller's jurisdiction."""
    return await service.scorecard(session, sql, principal, code, period, clock.now())


async def get_plain_period(
    clock: ClockDep,
    start: PeriodStart = None,
    end: PeriodEnd = None,
) -> Period:
    """The cell scorecard's period, without a series."""
    return service.period_of(start, end, None, clock.now())


@router.get(
    "/agencies/{code}/stats", operation_id="get_agency_stats", response_model=AgencyScorecard
)
async def get_agency_stats(
    code: str,
    session: SessionDep,
    clock: ClockDep,
    principal: StatsReaderDep,
    sql: Annotated[StatsSql, Depends(get_stats_sql)],
    period: Annotated[Period, Depends(get_plain_period)],
) -> AgencyScorecard:
    """An agency's scorecard over [from, to): its incidents, and its own steps' timeliness."""
    return await agencies.scorecard(session, sql, principal, code, period, clock.now())
