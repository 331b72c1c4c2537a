"""How the scorecard reads: which index answers the overdue count, what each database is told
before the percentiles, that SQLite sorts nothing, and that percentiles computed in Python are
PostgreSQL's. Timings live in bench/, never here."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Float, bindparam, event, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT

from app.stats.sql import SqliteStatsSql, percentile_cont
from tests.conftest import Harness
from tests.factories import DISTRICT, WEST, load_grid, login_headers
from tests.stats.factories import make_incident

P = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}


@contextmanager
def _statements(h: Harness) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        seen.append((str(args[2]), args[3]))

    event.listen(h.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(h.db.engine.sync_engine, "before_cursor_execute", record)


async def _scorecard_statements(h: Harness, code: str) -> list[tuple[str, Any]]:
    await load_grid(h)
    await make_incident(h, "330106001001", "2026-11-20T01:00", "dispatched")
    admin = await login_headers(h, "admin")
    with _statements(h) as seen:
        r = await h.client.get(f"/api/v1/cells/{code}/stats", params=P, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["overdue_open"] == 1
    return seen


async def _plan(h: Harness, statement: str, parameters: Any) -> str:
    async with h.db.read() as session:
        conn = await session.connection()
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(str(row[-1]) for row in rows)


def _overdue_statement(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    [found] = [(s, p) for s, p in seen if "FROM incidents" in s and "due_at <" in s]
    return found


async def test_the_overdue_count_spells_the_working_states_for_the_partial_index(
    harness: Harness,
) -> None:
    """A planner can use ix_incidents_working_due (WHERE status IN the working states) only when
    it sees the states as constants; bound, they would hide the index from PostgreSQL's generic
    plans of a prepared statement."""
    statement, _ = _overdue_statement(await _scorecard_statements(harness, DISTRICT))
    assert "IN ('dispatched', 'acknowledged', 'on_site')" in statement, statement


async def test_the_overdue_count_is_read_from_the_partial_index_alone(harness: Harness) -> None:
    statement, parameters = _overdue_statement(await _scorecard_statements(harness, DISTRICT))
    async with harness.db.read() as session:
        conn = await session.connection()
        # At a few rows any plan is as cheap as another (at a million the planners pick this
        # index themselves): rule the others out, and see that this one can answer.
        if harness.backend == "postgis":
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            await conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            explain = "EXPLAIN "
        else:
            # Fails with "no query solution" if the query does not imply the index's WHERE.
            statement = statement.replace(
                "FROM incidents", "FROM incidents INDEXED BY ix_incidents_working_due", 1
            )
            explain = "EXPLAIN QUERY PLAN "
        rows = await conn.exec_driver_sql(explain + statement, parameters)
        plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_incidents_working_due" in plan, plan
    # PostgreSQL reads no table row (SQLite defers the row lookup it never needs).
    assert "Index Only Scan" in plan or harness.backend != "postgis", plan


async def test_postgres_gives_the_percentile_sorts_memory_until_the_transaction_ends(
    harness: Harness,
) -> None:
    seen = await _scorecard_statements(harness, WEST)
    settings = [s for s, _ in seen if s.startswith("SET")]
    if harness.backend != "postgis":
        assert settings == []
        return
    assert settings == ["SET LOCAL work_mem = '32MB'"]
    percentiles = next(i for i, (s, _) in enumerate(seen) if "percentile_cont" in s)
    assert seen[percentiles - 1][0] == settings[0]


@pytest.mark.parametrize(
    ("later", "earlier"),
    [
        ("2026-11-02 02:10:01.100000", "2026-11-02 02:00:00.900000"),
        ("2026-11-02 02:20:00.000000", "2026-11-02 02:00:00.999999"),
        ("2027-01-01 00:00:00.000000", "2026-12-31 23:59:59.999999"),
        ("2026-11-02 02:00:00.500000", "2026-11-02 02:00:00.400000"),
    ],
)
async def test_sqlite_counts_whole_seconds_alike_with_or_without_unixepoch(
    harness: Harness, later: str, earlier: str
) -> None:
    """unixepoch() (SQLite 3.38+) and the older strftime('%s') truncate alike."""
    if harness.backend != "sqlite":
        return
    new, old = SqliteStatsSql(unixepoch=True), SqliteStatsSql(unixepoch=False)
    async with harness.db.read() as session:
        conn = await session.connection()
        row = (
            await conn.execute(
                select(
                    new.seconds_between(literal(later), literal(earlier)),
                    old.seconds_between(literal(later), literal(earlier)),
                )
            )
        ).one()
    assert row[0] == row[1]
    assert isinstance(row[0], float) and row[0] == row[0] // 1


async def test_sqlite_reads_a_district_period_without_sorting_it(harness: Harness) -> None:
    """SQLite groups by sorting, which cost more than all the counting: the totals are counted
    ungrouped over one index range, and the townships' counts are read township after township
    from ix_incidents_township_scorecard, already in the order of the groups."""
    if harness.backend != "sqlite":
        return
    seen = await _scorecard_statements(harness, DISTRICT)
    period = [(s, p) for s, p in seen if "FROM incidents" in s and "opened_at >=" in s]
    [supervised] = [(s, p) for s, p in period if "supervision_level IS NOT NULL" in s]
    assert "ix_incidents_supervised" in await _plan(harness, *supervised)
    period.remove(supervised)
    [by_worker] = [(s, p) for s, p in period if "verified_by = 'village_worker'" in s]
    assert "ix_incidents_worker_verified" in await _plan(harness, *by_worker)
    period.remove(by_worker)
    assert len(period) == 2, period  # the totals (and seconds), the townships' counts
    for statement, parameters in period:
        plan = await _plan(harness, statement, parameters)
        assert "TEMP B-TREE" not in plan, plan
        assert "COVERING INDEX" in plan, plan
    townships = next(s for s in period if "GROUP BY" in s[0])
    assert "ix_incidents_township_scorecard" in await _plan(harness, *townships)


def _seconds(n: int) -> list[int]:
    """n durations as the scorecard sees them: whole seconds, log-normal, many repeated."""
    rng = random.Random(n)
    return [int(rng.lognormvariate(6, 1.2)) for _ in range(n)]


@pytest.mark.parametrize(
    "values",
    [[], [42], [7, 3], [5, 5, 5, 5], list(range(11)), *(_seconds(n) for n in (3, 99, 4321))],
)
def test_percentiles_counted_in_python_are_percentile_conts(values: list[int]) -> None:
    """Against the definition (app/stats/sql.py), on the sorted values, in float8."""
    fractions = (0.0, 0.1, 0.5, 0.9, 0.95, 1.0)
    ordered = sorted(values)
    expected: list[float | None] = []
    for fraction in fractions:
        if not ordered:
            expected.append(None)
            continue
        position = fraction * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        share = position - low
        expected.append(ordered[low] + (float(ordered[high]) - ordered[low]) * share)
    shuffled = random.Random(0).sample(values, len(values))
    assert percentile_cont(shuffled, fractions) == expected


async def test_python_percentiles_equal_postgres_bit_for_bit(harness: Harness) -> None:
    """SQLite's percentiles are computed in Python: the same floats as PostgreSQL's own."""
    if harness.backend != "postgis":
        return
    fractions = [0.5, 0.9, 0.1, 0.75, 0.999, 1 / 3]
    query = text(
        "SELECT percentile_cont(:fractions) WITHIN GROUP (ORDER BY v::float8) "
        "FROM unnest(:values) AS v"
    ).bindparams(
        bindparam("fractions", type_=ARRAY(Float)), bindparam("values", type_=ARRAY(BIGINT))
    )
    async with harness.db.read() as session:
        conn = await session.connection()
        for n in (1, 2, 7, 100, 1001, 20_000):
            values = _seconds(n)
            answered = await conn.execute(query, {"fractions": fractions, "values": values})
            assert percentile_cont(values, fractions) == answered.scalar_one(), n
