"""The few SQL pieces of the scorecard that SQLite and PostgreSQL spell differently.

Why a helper of its own rather than the spatial store: these are not spatial questions, and
they are fragments, not the scorecard's queries — the service builds those itself and asks this
helper only for the seconds between two times, the percentiles of such durations (with the
session settings their sort needs), and the UTC+8 calendar bucket of a time. One object per
dialect is picked once, by the dialect name (`sql_for`), and handed to the service like the
spatial store is, so the service never branches on the dialect.

Both dialects must give the same numbers, bit for bit:
- durations are whole seconds between the two times, each truncated to its second (SQLite's
  `unixepoch()`, or `strftime('%s')` before SQLite 3.38 — the same integer at twice the cost;
  PostgreSQL's `floor(date_part('epoch'))`): exact integers on both, where sub-second
  arithmetic would differ (`julianday` keeps milliseconds, PostgreSQL microseconds);
- percentiles follow PostgreSQL's `percentile_cont`: for fraction f of n ordered values the
  position is f·(n−1) (0-based); the value is lo + (hi − lo)·(pos − floor(pos)), lo and hi the
  values at floor(pos) and ceil(pos). SQLite has no percentile function, so it numbers the
  values with a ROW_NUMBER() window, keeps only the rows at the ranks wanted (n is given: the
  service has counted the values already, and a COUNT() window would cost SQLite as much again
  as the numbering), and interpolates between them with the same formula in the same
  floating-point order;
- buckets are China days, weeks (Monday first) and months: times are shifted by a fixed +8 h
  (China has kept UTC+8 without daylight saving since 1991) and truncated; the label is the
  local start date `YYYY-MM-DD`.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Column,
    Executable,
    Float,
    Select,
    Table,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, Subquery

Interval = Literal["day", "week", "month"]
SORT_MEMORY = "32MB"  # PostgreSQL's work_mem for the percentile sorts (see before_percentiles)


@dataclass(frozen=True)
class Duration:
    """Whole seconds from `earlier` (never NULL) to `later`; `count` is how many of the rows the
    percentiles are taken over have `later` (the service knows it from its grouped counts)."""

    later: Column[datetime]
    earlier: Column[datetime]
    count: int


class StatsSql(Protocol):
    """Dialect-specific fragments of the scorecard's SQL."""

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        """later − earlier in whole seconds (each time truncated to its second); NULL when
        either is."""
        ...

    def duration_percentiles(
        self,
        table: Table,
        where: ColumnElement[bool],
        durations: Sequence[Duration],
        fractions: Sequence[float],
    ) -> Select[Any]:
        """One row: for each duration, then each fraction, `percentile_cont` of its seconds over
        the rows of `table` matching `where` that have its `later` time (NULL when none has)."""
        ...

    def before_percentiles(self) -> Sequence[Executable]:
        """Statements to run in the unit of work before the percentiles, for their sorts."""
        ...

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        """The UTC+8 start date (`YYYY-MM-DD`) of the day, week or month holding `at`."""
        ...


class PostgresStatsSql:
    """PostgreSQL: `date_part('epoch')`, `percentile_cont`, `date_trunc`."""

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        # floor(date_part) stays in float8: numeric `extract` and `round` cost a third more.
        return cast(func.floor(func.date_part("epoch", later)), Float) - func.floor(
            func.date_part("epoch", earlier)
        )

    def duration_percentiles(
        self,
        table: Table,
        where: ColumnElement[bool],
        durations: Sequence[Duration],
        fractions: Sequence[float],
    ) -> Select[Any]:
        # One scan. The fractions of a duration share one sort (same argument, same order);
        # percentile_cont leaves out the NULLs of the rows without the time.
        return (
            select(
                *(
                    func.percentile_cont(fraction).within_group(
                        self.seconds_between(duration.later, duration.earlier)
                    )
                    for duration in durations
                    for fraction in fractions
                )
            )
            .select_from(table)
            .where(where)
        )

    def before_percentiles(self) -> Sequence[Executable]:
        # A sort holds 24 bytes a value in memory (its array grows by doubling): a district's
        # year, ~460k values a duration, needs ~13 MB; two years at that rate ~25 MB. At the
        # default work_mem of 4 MB both sorts spill to temporary files (~30 MB written and read
        # back for that year, a sixth of the query's time). SET LOCAL ends with the request's
        # read transaction, and a sort takes only the memory it needs.
        return [text(f"SET LOCAL work_mem = '{SORT_MEMORY}'")]

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        local = func.timezone("UTC", at) + literal_column("interval '8 hours'")
        truncated = func.date_trunc(interval, local)
        return func.to_char(truncated, "YYYY-MM-DD")


class SqliteStatsSql:
    """SQLite: `unixepoch()`, ranks from a window function, `date`/`strftime` modifiers."""

    def __init__(self, unixepoch: bool = sqlite3.sqlite_version_info >= (3, 38, 0)) -> None:
        self._unixepoch = unixepoch

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        return cast(self._epoch(later), Float) - cast(self._epoch(earlier), Float)

    def _epoch(self, at: ColumnElement[datetime]) -> ColumnElement[Any]:
        """Whole seconds since 1970 (truncated: these times are all after it)."""
        return func.unixepoch(at) if self._unixepoch else func.strftime("%s", at)

    def duration_percentiles(
        self,
        table: Table,
        where: ColumnElement[bool],
        durations: Sequence[Duration],
        fractions: Sequence[float],
    ) -> Select[Any]:
        froms = [
            self._percentiles(table, where, duration, fractions, f"d{i}")
            for i, duration in enumerate(durations)
        ]
        joined: FromClause = froms[0]
        for sub in froms[1:]:
            joined = joined.join(sub, true())  # single-row aggregates side by side
        return select(*(column for sub in froms for column in sub.c)).select_from(joined)

    def _percentiles(
        self,
        table: Table,
        where: ColumnElement[bool],
        duration: Duration,
        fractions: Sequence[float],
        name: str,
    ) -> Subquery:
        """One row: the duration's percentiles, from the rows at the ranks they need."""
        # Rows without the time are left out on the column itself, before any parsing.
        values = (
            select(self.seconds_between(duration.later, duration.earlier).label("v"))
            .select_from(table)
            .where(where, duration.later.is_not(None))
            .subquery(f"{name}_values")
        )
        ranked = select(
            values.c.v, func.row_number().over(order_by=values.c.v).label("rn")
        ).subquery(f"{name}_ranked")
        # position = f·(n − 1) in float8 as percentile_cont has it; lo at 0-based rank
        # floor(position), hi at the next (ROW_NUMBER is 1-based: +1, +2).
        positions = [fraction * max(duration.count - 1, 0) for fraction in fractions]
        floors = [math.floor(position) for position in positions]
        ranks = sorted({floor + step for floor in floors for step in (1, 2)})
        picked = select(ranked).where(ranked.c.rn.in_(ranks)).subquery(f"{name}_picked")
        outputs = []
        for i, (position, floor) in enumerate(zip(positions, floors, strict=True)):
            low = func.max(_when(picked.c.rn == floor + 1, picked.c.v))
            high = func.max(_when(picked.c.rn == floor + 2, picked.c.v))
            share = literal(position - floor, Float)
            # lo + (hi − lo)·share, hi = lo when pos is a whole rank: percentile_cont's order.
            outputs.append((low + (func.coalesce(high, low) - low) * share).label(f"p{i}"))
        return select(*outputs).select_from(picked).subquery(name)

    def before_percentiles(self) -> Sequence[Executable]:
        return []

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        if interval == "day":
            return func.date(at, "+8 hours")
        if interval == "week":
            # Back six days, then forward to the first Monday: the Monday on or before.
            return func.date(at, "+8 hours", "-6 days", "weekday 1")
        return func.strftime("%Y-%m-01", at, "+8 hours")


def _when(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((condition, value))


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
