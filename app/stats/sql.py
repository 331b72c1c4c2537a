"""The parts of the scorecard's SQL that SQLite and PostgreSQL spell, or read, differently.

Why a helper of its own rather than the spatial store: these are not spatial questions. The
service decides what is counted over which rows; this helper how the period's incidents are read
for it (`read_period`), the seconds between two times and the percentiles of such durations, and
the UTC+8 calendar bucket of a time. One object per dialect is picked once, by the dialect name
(`sql_for`), and handed to the service like the spatial store is, so the service never branches
on the dialect.

Each database reads the period in two passes, not the same two:
- PostgreSQL groups by hashing, in parallel workers: one pass counts the period grouped by child
  cell (every child code met, so that the groups add up to the totals), one computes the
  percentiles (`percentile_cont`, an ordered-set aggregate, runs in one process: in the counting
  pass it would hold the counting back).
- SQLite groups by sorting, and sorting was most of its time on a district's year (~500k
  incidents, 1.4 s in all): ~0.35 s to sort the period for the grouped counts, ~0.45 s for each
  percentile's ROW_NUMBER() window. Unsorted, one pass computes every count and both durations
  in ~0.27 s. So that pass is not grouped: it counts the totals and hands over the durations'
  seconds as JSON arrays (`json_group_array`), whose percentiles Python computes in ~0.1 s
  (`percentile_cont` below; a year's ~480k values take ~20 MB while they are counted). A second
  pass reads the children's few counts with the children named, which for a district's
  townships comes from ix_incidents_township_scorecard township after township (~0.07 s):
  grouped without a sort.
Either way, incidents under none of today's children (a township moved to another district keeps
its code on its past incidents) count in the totals only.

Both dialects must give the same numbers, bit for bit:
- durations are whole seconds between the two times, each truncated to its second (SQLite's
  `unixepoch()`, or `strftime('%s')` before SQLite 3.38 — the same integer at twice the cost;
  PostgreSQL's `floor(date_part('epoch'))`): exact integers on both, where sub-second
  arithmetic would differ (`julianday` keeps milliseconds, PostgreSQL microseconds);
- percentiles follow PostgreSQL's `percentile_cont`: for fraction f of n ordered values the
  position is f·(n−1) (0-based); the value is lo + (hi − lo)·(pos − floor(pos)), lo and hi the
  values at floor(pos) and ceil(pos). Python's `percentile_cont` finds lo and hi among the
  counted distinct seconds and interpolates with the same formula in the same floating-point
  order;
- buckets are China days, weeks (Monday first) and months: times are shifted by a fixed +8 h
  (China has kept UTC+8 without daylight saving since 1991) and truncated; the label is the
  local start date `YYYY-MM-DD`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Column,
    Float,
    Integer,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, Label

Interval = Literal["day", "week", "month"]
SORT_MEMORY = "32MB"  # PostgreSQL's work_mem for the percentile sorts (see PostgresStatsSql)


@dataclass(frozen=True)
class Duration:
    """Whole seconds from `earlier` (never NULL) to `later` (NULL until the step is done)."""

    later: Column[datetime]
    earlier: Column[datetime]


@dataclass(frozen=True)
class PeriodCounts:
    """What the service counts over the period's incidents, the rows matching `where`."""

    where: ColumnElement[bool]
    counts: Sequence[Label[Any]]  # counts and sums, which add up over groups of rows
    child: Column[str]
    children: Sequence[str]  # the codes of today's child cells
    child_counts: Sequence[str]  # the names of the counts wanted per child
    durations: Sequence[Duration]  # percentiles at each fraction, over the rows with `later`
    fractions: Sequence[float]


@dataclass(frozen=True)
class PeriodFigures:
    """What the period's incidents come to."""

    totals: Mapping[str, Any]  # by the counts' names
    by_child: Mapping[str, Mapping[str, Any]]  # children without incidents may be missing
    percentiles: list[list[float | None]]  # per duration, per fraction; None without values


class StatsSql(Protocol):
    """The dialect's way of reading the period, and its spellings."""

    async def read_period(self, conn: AsyncConnection, period: PeriodCounts) -> PeriodFigures:
        """The totals, each child's counts and the durations' percentiles."""
        ...

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        """The UTC+8 start date (`YYYY-MM-DD`) of the day, week or month holding `at`."""
        ...


class PostgresStatsSql:
    """PostgreSQL: counts grouped by child, `percentile_cont`, `date_trunc`."""

    async def read_period(self, conn: AsyncConnection, period: PeriodCounts) -> PeriodFigures:
        groups = [
            dict(row._mapping)
            for row in await conn.execute(
                select(period.child.label("child"), *period.counts)
                .where(period.where)
                .group_by(period.child)
            )
        ]
        totals = {count.name: sum(group[count.name] for group in groups) for count in period.counts}
        # A sort holds 24 bytes a value in memory (its array grows by doubling): a district's
        # year, ~460k values a duration, needs ~13 MB; two years at that rate ~25 MB. At the
        # default work_mem of 4 MB both sorts spill to temporary files (~30 MB written and read
        # back for that year, a sixth of the query's time). SET LOCAL ends with the request's
        # read transaction, and a sort takes only the memory it needs.
        await conn.execute(text(f"SET LOCAL work_mem = '{SORT_MEMORY}'"))
        # One sort a duration for all its fractions; percentile_cont leaves out the NULLs of the
        # rows without the time, and answers NULL (not an array of them) when no row has it.
        fractions = array([literal(fraction, Float) for fraction in period.fractions])
        aggregates = [
            type_coerce(
                func.percentile_cont(fractions).within_group(
                    self.seconds_between(duration.later, duration.earlier)
                ),
                ARRAY(Float),
            )
            for duration in period.durations
        ]
        answered = (await conn.execute(select(*aggregates).where(period.where))).one()
        return PeriodFigures(
            totals=totals,
            by_child={group["child"]: group for group in groups},
            percentiles=[
                list(values) if values is not None else [None for _ in period.fractions]
                for values in answered
            ],
        )

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        """later − earlier in whole seconds (each time truncated to its second)."""
        # floor(date_part) stays in float8: numeric `extract` and `round` cost a third more.
        return cast(func.floor(func.date_part("epoch", later)), Float) - func.floor(
            func.date_part("epoch", earlier)
        )

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        local = func.timezone("UTC", at) + literal_column("interval '8 hours'")
        truncated = func.date_trunc(interval, local)
        return func.to_char(truncated, "YYYY-MM-DD")


class SqliteStatsSql:
    """SQLite: ungrouped totals, children by name, seconds as JSON, `date`/`strftime`."""

    def __init__(self, unixepoch: bool = sqlite3.sqlite_version_info >= (3, 38, 0)) -> None:
        self._unixepoch = unixepoch

    async def read_period(self, conn: AsyncConnection, period: PeriodCounts) -> PeriodFigures:
        # Integers, which JSON writes and Python reads back exactly; rows without the time are
        # left out on the column itself, before any parsing.
        seconds = [
            func.json_group_array(self._epoch(duration.later) - self._epoch(duration.earlier))
            .filter(duration.later.is_not(None))
            .label(f"seconds_{i}")
            for i, duration in enumerate(period.durations)
        ]
        answered = (await conn.execute(select(*period.counts, *seconds).where(period.where))).one()
        totals = dict(answered._mapping)
        by_child: dict[str, Mapping[str, Any]] = {}
        if period.children:
            wanted = [count for count in period.counts if count.name in period.child_counts]
            groups = await conn.execute(
                select(period.child.label("child"), *wanted)
                .where(period.where, period.child.in_(period.children))
                .group_by(period.child)
            )
            by_child = {group.child: dict(group._mapping) for group in groups}
        # Parsing and counting a year's seconds is tens of milliseconds of Python: on a thread,
        # so that the worker's other requests go on meanwhile.
        percentiles = await asyncio.to_thread(
            _percentiles_of, [totals[values.name] for values in seconds], period.fractions
        )
        return PeriodFigures(totals=totals, by_child=by_child, percentiles=percentiles)

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        """later − earlier in whole seconds (each time truncated to its second)."""
        return cast(self._epoch(later), Float) - cast(self._epoch(earlier), Float)

    def _epoch(self, at: ColumnElement[datetime]) -> ColumnElement[int]:
        """Whole seconds since 1970 (truncated: these times are all after it)."""
        if self._unixepoch:
            return func.unixepoch(at, type_=Integer)
        return cast(func.strftime("%s", at), Integer)

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        if interval == "day":
            return func.date(at, "+8 hours")
        if interval == "week":
            # Back six days, then forward to the first Monday: the Monday on or before.
            return func.date(at, "+8 hours", "-6 days", "weekday 1")
        return func.strftime("%Y-%m-01", at, "+8 hours")


def _percentiles_of(arrays: Sequence[str], fractions: Sequence[float]) -> list[list[float | None]]:
    """`percentile_cont` of each JSON array of whole seconds."""
    return [percentile_cont(json.loads(array), fractions) for array in arrays]


def percentile_cont(values: Iterable[int], fractions: Sequence[float]) -> list[float | None]:
    """PostgreSQL's `percentile_cont` of whole seconds at each fraction, bit for bit.

    Counted rather than sorted: sorting the distinct values (whole seconds repeat: a district's
    year of ~480k has 5k to 35k) and walking their running counts to the ranks wanted costs half
    of sorting them all, or less."""
    counts = Counter(values)
    distinct = sorted(counts)
    ends = list(accumulate(map(counts.__getitem__, distinct)))  # how many are ≤ each value
    if not ends:
        return [None for _ in fractions]

    def at(rank: int) -> float:
        return float(distinct[bisect_right(ends, rank)])

    results: list[float | None] = []
    for fraction in fractions:
        # In float8 as PostgreSQL has it: the position, its floor and ceiling, then
        # lo + (hi − lo)·share (hi is lo when the position is a whole rank).
        position = fraction * (ends[-1] - 1)
        low, high = math.floor(position), math.ceil(position)
        results.append(at(low) + (at(high) - at(low)) * (position - low))
    return results


_BY_DIALECT: dict[str, StatsSql] = {
    "postgresql": PostgresStatsSql(),
    "sqlite": SqliteStatsSql(),
}


def sql_for(dialect: str) -> StatsSql:
    """The fragments for a SQLAlchemy dialect name."""
    try:
        return _BY_DIALECT[dialect]
    except KeyError:
        raise ValueError(f"no scorecard SQL for the {dialect!r} dialect") from None
