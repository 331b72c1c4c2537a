"""The scorecard (考核) of a grid cell over a period, computed by a handful of aggregate queries.

Definitions — "under the cell" matches the incident's or report's `district_code`,
`township_code` or `village_code` by the cell's level; the period is [from, to):
- `incidents`: incidents under the cell opened in the period; `by_status`, `by_category` split
  them (every status and every configured category is listed, zeros included).
- `reports`: reports under the cell observed in the period.
- `closure_rate` = closed / (incidents − voided). Voided cases (status `rejected`, voided by a
  supervisor: the assessed unit cannot) are the only ones left out; a case an agency returned
  (`returned`, waiting for a supervisor) still counts, as not closed. `voided` and `returned`
  count them (their reasons are on the incidents: `void_reason`, the timeline's notes).
  `rate_definitions` says in the answer what each rate leaves out (RATE_DEFINITIONS).
- `closed_verified_by_village_worker`: the period's closed incidents whose closing verification
  was by a grid worker of the incident's own village, not independent of the place assessed;
  the rest of the closed incidents were verified by a supervisor (or before verifiers were
  recorded). From the partial index ix_incidents_worker_verified alone.
- `supervised`: the period's incidents a supervisor supervised (督办, any level);
  `supervised_on_time_rate` = those closed with resolved_at ≤ supervision_due_at (or
  resolve_due_at when the supervisor set no deadline) / those closed. Read by a query of its
  own from the partial index ix_incidents_supervised (supervised cases only).
- `on_time_rate` = closed with resolved_at <= resolve_due_at / closed (an incident without a
  resolve deadline is not on time).
- `rework_rate` = sum(rework_count) of the period's incidents / closed.
  Every rate is null when its denominator is 0.
- `overdue_open`: incidents under the cell opened before `to` (at any time before it, not only in
  the period) whose `due_at` is before now (the service's clock) and that are still being
  worked: dispatched, acknowledged or on site. A resolved incident waits for verification, not
  for the township, and is not overdue — the same rule as an incident's `overdue` flag and
  `?overdue=true`, so the scorecard and the incident list agree.
- `acknowledge_seconds` = acknowledged_at − opened_at and `resolve_seconds` = resolved_at (the
  latest resolve) − opened_at over the period's incidents that have the time: median and p90 as
  PostgreSQL's `percentile_cont` (linear interpolation between ranks; see app/stats/sql.py) of
  whole seconds (each time truncated to its second); null when there is no such incident.
- `penalties`: the period's incidents resolved with a `warning`, with a `fine`, and the sum of
  the fines in yuan.
- `children`: one row per child cell (townships of a district, villages of a township, none for
  a village), zeros included, in code order: its incidents, on_time_rate and overdue_open by the
  same definitions.
- `series` (with `interval`): incidents and reports per China (UTC+8) day, week (from Monday) or
  month, from the bucket holding `from` to the one holding the last instant before `to`, empty
  buckets included with zeros; a bucket's `start` is its UTC+8 midnight, answered in UTC. The
  first and last buckets count only what falls in [from, to).

Counting and summing happen in SQL, in two passes over the period's incidents whose shape each
database chooses (app/stats/sql.py, `read_period`); Python divides the sums.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Table, bindparam, func, literal_column, select
from sqlalchemy.sql.elements import BindParameter, ColumnElement, Label
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock, errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.categories.models import Category
from app.grid import service as grid_service
from app.grid.models import CELLS, Cell
from app.incidents.models import STATUSES, WORKING_STATUSES, Incident
from app.reports.models import Report
from app.stats.schemas import (
    ChildStats,
    Durations,
    Penalties,
    Period,
    Scorecard,
    SeriesPoint,
    StatsCell,
)
from app.stats.sql import Duration, Interval, PeriodCounts, StatsSql

INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
REPORTS: Table = Report.__table__  # type: ignore[attr-defined]
CATEGORIES: Table = Category.__table__  # type: ignore[attr-defined]
AGENCIES: Table = Agency.__table__  # type: ignore[attr-defined]

MAX_SPAN = timedelta(days=732)  # two years, a leap day included
CHINA = clock.CHINA
_CHILD_COLUMN = {"district": "township_code", "township": "village_code", "village": "village_code"}
FRACTIONS = (0.5, 0.9)
DURATIONS = (
    Duration(INCIDENTS.c.acknowledged_at, INCIDENTS.c.opened_at),
    Duration(INCIDENTS.c.resolved_at, INCIDENTS.c.opened_at),
)
_CHILD_COUNTS = ("incidents", "n_closed", "on_time")  # what a child's row shows
RATE_DEFINITIONS = {
    "closure_rate": "closed / (incidents − voided); excludes only voided cases (status "
    "rejected); returned cases count as not closed",
    "on_time_rate": "closed with resolved_at ≤ resolve_due_at / closed; excludes every case "
    "not closed",
    "rework_rate": "sum of rework_count / closed; excludes nothing from the sum, every case "
    "not closed from the denominator",
    "supervised_on_time_rate": "supervised cases closed with resolved_at ≤ the supervisor's "
    "deadline (the case's resolve_due_at when none was set) / supervised cases closed; "
    "excludes every case never supervised or not closed",
}


_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def period_of(
    start: str | None, end: str | None, interval: Interval | None, now: datetime
) -> Period:
    """The period a scorecard is asked for. Each bound is a plain date (a China day: `from`
    its first instant, `to` the end of it, so `from=2026-11-01&to=2026-11-30` is November) or
    an RFC 3339 time with an offset (`to` excluded). Neither: the current China month. Only
    `from`: until now. Only `to`: from the first day of its China month."""
    start_at = _bound(start, "from", end_of_day=False)
    end_at = _bound(end, "to", end_of_day=True)
    if start_at is None and end_at is None:
        start_at = _month_start(now)
        end_at = _month_start(start_at + timedelta(days=32))
    elif end_at is None:
        end_at = now
    elif start_at is None:
        start_at = _month_start(end_at - timedelta(microseconds=1))
    assert start_at is not None and end_at is not None
    return check_period(Period(start_at, end_at, interval))


def _bound(text: str | None, name: str, end_of_day: bool) -> datetime | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if _PLAIN_DATE.match(text):
            day = date.fromisoformat(text)
            midnight = datetime(day.year, day.month, day.day, tzinfo=CHINA)
            return midnight + timedelta(days=1) if end_of_day else midnight
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        msg = "a date (YYYY-MM-DD, a China day) or an RFC 3339 time with an offset"
        raise errors.ValidationFailed(
            f"{name}: must be {msg}", errors=[{"loc": ["query", name], "msg": f"must be {msg}"}]
        )
    return at


def _month_start(at: datetime) -> datetime:
    """The first instant of the China month `at` is in."""
    local = at.astimezone(CHINA)
    return datetime(local.year, local.month, 1, tzinfo=CHINA)


def check_period(period: Period) -> Period:
    """Refuse an empty, reversed or over-long period; answer it in UTC."""
    if period.end <= period.start:
        raise errors.ValidationFailed(
            "to must be after from", errors=[{"loc": ["query", "to"], "msg": "must be after from"}]
        )
    if period.end - period.start > MAX_SPAN:
        raise errors.ValidationFailed(
            "the period may span at most two years",
            errors=[{"loc": ["query", "to"], "msg": "at most 732 days after from"}],
        )
    return Period(period.start.astimezone(UTC), period.end.astimezone(UTC), period.interval)


async def scorecard(
    session: AsyncSession,
    sql: StatsSql,
    principal: Principal,
    code: str,
    period: Period,
    now: datetime,
) -> Scorecard:
    """The scorecard of cell `code` over `period`, if the caller's jurisdiction covers it."""
    period = check_period(period)
    cell = await grid_service.get_cell(session, code)
    await _check_reach(session, principal, cell)
    conn = await session.connection()
    under = _under(INCIDENTS, cell)
    child = INCIDENTS.c[_CHILD_COLUMN[cell.level]]
    categories = sorted((await conn.execute(select(CATEGORIES.c.code))).scalars())
    children = list(
        await conn.execute(
            select(CELLS.c.code, CELLS.c.name)
            .where(CELLS.c.parent_code == cell.code)
            .order_by(CELLS.c.code)
        )
    )
    figures = await sql.read_period(
        conn,
        PeriodCounts(
            where=under & _in_period(INCIDENTS.c.opened_at, period),
            counts=counts_of(categories),
            child=child,
            children=[code for code, _ in children],
            child_counts=_CHILD_COUNTS,
            durations=DURATIONS,
            fractions=FRACTIONS,
        ),
    )
    overdue = {
        row[0]: int(row[1]) for row in await conn.execute(_overdue_open(under, child, period, now))
    }
    reports = (
        await conn.execute(
            select(func.count())
            .select_from(REPORTS)
            .where(_under(REPORTS, cell), _in_period(REPORTS.c.observed_at, period))
        )
    ).scalar_one()

    supervised, supervised_closed, supervised_on_time = (
        await conn.execute(supervised_counts(under & _in_period(INCIDENTS.c.opened_at, period)))
    ).one()
    by_village_worker = (
        await conn.execute(
            select(func.count()).where(
                under,
                _in_period(INCIDENTS.c.opened_at, period),
                INCIDENTS.c.verified_by == literal_column("'village_worker'"),
                INCIDENTS.c.status == "closed",
            )
        )
    ).scalar_one()
    total = figures.totals
    closed, rejected = total["n_closed"], total["n_rejected"]
    (ack_median, ack_p90), (res_median, res_p90) = figures.percentiles
    return Scorecard(
        cell=StatsCell(code=cell.code, name=cell.name, level=cell.level),
        from_=period.start,
        to=period.end,
        reports=int(reports),
        incidents=total["incidents"],
        by_status={status: total[f"n_{status}"] for status in STATUSES},
        by_category={code: total[f"category_{i}"] for i, code in enumerate(categories)},
        acknowledge_seconds=Durations(median=ack_median, p90=ack_p90),
        resolve_seconds=Durations(median=res_median, p90=res_p90),
        closure_rate=ratio(closed, total["incidents"] - rejected),
        on_time_rate=ratio(total["on_time"], closed),
        rework_rate=ratio(int(total["rework"]), closed),
        overdue_open=sum(overdue.values()),
        penalties=Penalties(
            warning=total["warnings"],
            fine=total["fines"],
            fine_yuan=Decimal(str(total["fine_yuan"])),
        ),
        voided=rejected,
        returned=total["n_returned"],
        closed_verified_by_village_worker=int(by_village_worker),
        supervised=int(supervised),
        supervised_on_time_rate=ratio(int(supervised_on_time), int(supervised_closed)),
        rate_definitions=RATE_DEFINITIONS,
        children=[
            _child_stats(code, name, figures.by_child.get(code), overdue.get(code, 0))
            for code, name in children
        ],
        series=await _series(conn, sql, cell, period) if period.interval else None,
    )


def supervised_counts(where: ColumnElement[bool]) -> Any:
    """The period's supervised cases: all, closed, closed by the deadline. The level's test is
    spelt as ix_incidents_supervised's predicate, so that the partial index answers it."""
    c = INCIDENTS.c
    closed = c.status == "closed"
    deadline = func.coalesce(c.supervision_due_at, c.resolve_due_at)
    return select(
        func.count(),
        func.count().filter(closed),
        func.count().filter(closed, c.resolved_at <= deadline),
    ).where(where, c.supervision_level.is_not(None))


async def _check_reach(session: AsyncSession, principal: Principal, cell: Cell) -> None:
    """Admins; supervisors bound to the cell or above it; officers of the township agency over
    it; API keys (incidents:read, checked by the route) unlimited or limited to it or above."""
    above = {cell.code, cell.parent_code, cell.district_code} - {None}
    if principal.is_admin:
        return
    if principal.has_role("supervisor") and principal.cell_code in above:
        return
    if principal.kind == "api_key" and principal.cell_code in {None, *above}:
        return
    if principal.has_role("officer") and principal.agency_code is not None:
        agency_cell = (
            await (await session.connection()).execute(
                select(AGENCIES.c.cell_code).where(AGENCIES.c.code == principal.agency_code)
            )
        ).scalar()
        if agency_cell is not None and agency_cell in above:
            return
    raise errors.Forbidden(f"the scorecard of {cell.code} is outside your jurisdiction")


def _under(table: Table, cell: Cell) -> ColumnElement[bool]:
    column: Column[str] = table.c[f"{cell.level}_code"]
    return column == cell.code


def _in_period(column: Column[datetime], period: Period) -> ColumnElement[bool]:
    return (column >= period.start) & (column < period.end)


def counts_of(categories: list[str]) -> list[Label[Any]]:
    """What is counted and summed over the period's incidents, named: every total, by status
    and by category too (every incident's category is one of the table's: a foreign key).

    Counted with FILTER rather than grouped by status or category, so that a database groups
    by child cell at most: SQLite, which groups by sorting, then counts the totals over one range
    of ix_incidents_district_scorecard for a district (every column used here is in it) and
    sorts nothing (see app/stats/sql.py)."""
    c = INCIDENTS.c
    closed = c.status == "closed"
    return [
        func.count().label("incidents"),
        *(func.count().filter(c.status == status).label(f"n_{status}") for status in STATUSES),
        *(
            func.count().filter(c.category == code).label(f"category_{i}")
            for i, code in enumerate(categories)
        ),
        func.count().filter(closed, c.resolved_at <= c.resolve_due_at).label("on_time"),
        func.coalesce(func.sum(c.rework_count), 0).label("rework"),
        func.count().filter(c.penalty_kind == "warning").label("warnings"),
        func.count().filter(c.penalty_kind == "fine").label("fines"),
        func.coalesce(func.sum(c.penalty_amount_yuan).filter(c.penalty_kind == "fine"), 0).label(
            "fine_yuan"
        ),
    ]


def _child_stats(
    code: str, name: str, counted: Mapping[str, Any] | None, overdue: int
) -> ChildStats:
    if counted is None:  # no incident in the period
        return ChildStats(
            code=code, name=name, incidents=0, on_time_rate=None, overdue_open=overdue
        )
    return ChildStats(
        code=code,
        name=name,
        incidents=counted["incidents"],
        on_time_rate=ratio(counted["on_time"], counted["n_closed"]),
        overdue_open=overdue,
    )


def _overdue_open(
    under: ColumnElement[bool], child: Column[str], period: Period, now: datetime
) -> Any:
    """Read from the partial index ix_incidents_working_due alone (see app/incidents/models.py).
    The states are written into the SQL, not bound: a planner proves that the query implies the
    index's predicate only from constants (PostgreSQL's generic plans of prepared statements,
    SQLite before it re-prepares with the bound values)."""
    c = INCIDENTS.c
    working: BindParameter[list[str]] = bindparam(
        "working", list(WORKING_STATUSES), expanding=True, literal_execute=True
    )
    return (
        select(child, func.count())
        .where(under, c.opened_at < period.end, c.status.in_(working), c.due_at < now)
        .group_by(child)
    )


async def _series(conn: Any, sql: StatsSql, cell: Cell, period: Period) -> list[SeriesPoint]:
    assert period.interval is not None
    counted: dict[str, list[int]] = {}
    for position, (table, at) in enumerate(
        ((INCIDENTS, INCIDENTS.c.opened_at), (REPORTS, REPORTS.c.observed_at))
    ):
        bucket = sql.local_bucket(at, period.interval).label("bucket")
        query = (
            select(bucket, func.count())
            .where(_under(table, cell), _in_period(at, period))
            .group_by(bucket)
        )
        for label, count in await conn.execute(query):
            counted.setdefault(str(label), [0, 0])[position] = int(count)
    points = []
    for start in _bucket_starts(period.start, period.end, period.interval):
        incidents, reports = counted.get(start.isoformat(), [0, 0])
        midnight = datetime(start.year, start.month, start.day, tzinfo=CHINA)
        points.append(
            SeriesPoint(start=midnight.astimezone(UTC), reports=reports, incidents=incidents)
        )
    return points


def _bucket_starts(start: datetime, end: datetime, interval: Interval) -> list[date]:
    """UTC+8 start dates of the buckets meeting [start, end)."""
    first = start.astimezone(CHINA).date()
    last = (end - timedelta(microseconds=1)).astimezone(CHINA).date()
    if interval == "week":
        first -= timedelta(days=first.weekday())
    elif interval == "month":
        first = first.replace(day=1)
    starts = []
    current = first
    while current <= last:
        starts.append(current)
        if interval == "day":
            current += timedelta(days=1)
        elif interval == "week":
            current += timedelta(days=7)
        else:
            current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return starts


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
