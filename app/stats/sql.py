"""The few SQL pieces of the scorecard that SQLite and PostgreSQL spell differently.

Why a helper of its own rather than the spatial store: these are not spatial questions, and
they are expressions, not queries — the service builds every scorecard query itself and asks
this helper only for three fragments: the seconds between two times, continuous percentiles,
and the UTC+8 calendar bucket of a time. One object per dialect is picked once, by the dialect
name (`sql_for`), and handed to the service like the spatial store is, so the service never
branches on the dialect.

Both dialects must give the same numbers, bit for bit:
- durations are whole seconds between the two times, each truncated to its second (SQLite's
  `strftime('%s')`, PostgreSQL's `floor(date_part('epoch'))`): exact integers on both, where
  sub-second arithmetic would differ (`julianday` keeps milliseconds, PostgreSQL microseconds);
- percentiles follow PostgreSQL's `percentile_cont`: for fraction f of n ordered values the
  position is f·(n−1) (0-based); the value is lo + (hi − lo)·(pos − floor(pos)), lo and hi the
  values at floor(pos) and ceil(pos). SQLite has no percentile function, so it numbers the
  values with ROW_NUMBER() and COUNT() windows and picks the two ranks with the same formula
  in the same floating-point order;
- buckets are China days, weeks (Monday first) and months: times are shifted by a fixed +8 h
  (China has kept UTC+8 without daylight saving since 1991) and truncated; the label is the
  local start date `YYYY-MM-DD`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, Subquery

Interval = Literal["day", "week", "month"]


class StatsSql(Protocol):
    """Dialect-specific fragments of the scorecard's SQL."""

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        """later − earlier in whole seconds (each time truncated to its second); NULL when
        either is."""
        ...

    def percentiles(
        self, values: Subquery, columns: Sequence[str], fractions: Sequence[float]
    ) -> Select[Any]:
        """One row: for each column, then each fraction, `percentile_cont` of the column's
        non-null values in `values` (NULL when it has none)."""
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

    def percentiles(
        self, values: Subquery, columns: Sequence[str], fractions: Sequence[float]
    ) -> Select[Any]:
        return select(
            *(
                func.percentile_cont(fraction).within_group(values.c[column])
                for column in columns
                for fraction in fractions
            )
        ).select_from(values)

    def local_bucket(self, at: ColumnElement[datetime], interval: Interval) -> ColumnElement[str]:
        local = func.timezone("UTC", at) + literal_column("interval '8 hours'")
        truncated = func.date_trunc(interval, local)
        return func.to_char(truncated, "YYYY-MM-DD")


class SqliteStatsSql:
    """SQLite: `strftime('%s')`, ranks from window functions, `date`/`strftime` modifiers."""

    def seconds_between(
        self, later: ColumnElement[datetime], earlier: ColumnElement[datetime]
    ) -> ColumnElement[float]:
        return cast(func.strftime("%s", later), Float) - cast(func.strftime("%s", earlier), Float)

    def percentiles(
        self, values: Subquery, columns: Sequence[str], fractions: Sequence[float]
    ) -> Select[Any]:
        picked: list[ColumnElement[Any]] = []
        froms: list[Subquery] = []
        for column in columns:
            value = values.c[column]
            ranked = (
                select(
                    value.label("v"),
                    func.row_number().over(order_by=value).label("rn"),
                    func.count().over().label("n"),
                )
                .where(value.is_not(None))
                .subquery(f"ranked_{column}")
            )
            outputs = []
            for i, fraction in enumerate(fractions):
                position = fraction * (ranked.c.n - 1)
                floor = cast(position, Integer)  # positions are never negative
                low = func.max(_when(ranked.c.rn == floor + 1, ranked.c.v))
                high = func.max(_when(ranked.c.rn == floor + 2, ranked.c.v))
                share = func.max(position - floor)
                # lo + (hi − lo)·share, hi = lo when pos is a whole rank: percentile_cont's order.
                outputs.append((low + (func.coalesce(high, low) - low) * share).label(f"p{i}"))
            froms.append(select(*outputs).select_from(ranked).subquery(f"pct_{column}"))
        joined: FromClause = froms[0]
        for sub in froms[1:]:
            joined = joined.join(sub, true())  # single-row aggregates side by side
        for sub in froms:
            picked.extend(sub.c)
        return select(*picked).select_from(joined)

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
