"""Concurrent units of work: writers queue (one process or several), nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import func, select

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database, create_engine
from app.incidents.service import next_case_seq
from tests.conftest import TEST_SECRET, new_sqlite_database
from tests.factories import NOW

_TOUCH = text("UPDATE categories SET name = name WHERE code = 'open_burning'")


def _database(url: str, busy_timeout_ms: int = 30_000) -> Database:
    settings = Settings(
        database_url=url, secret_key=TEST_SECRET, sqlite_busy_timeout_ms=busy_timeout_ms
    )
    return Database(create_engine(settings.url, settings))


@pytest.fixture
async def two_processes(fresh_database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines on one database: what two API worker processes have."""
    first, second = _database(fresh_database_url), _database(fresh_database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def _read_then_write(db: Database, i: int) -> None:
    async with db.write() as session:
        seen = (await session.exec(select(func.count()).select_from(AuditEvent))).one()
        await asyncio.sleep(0.005)  # let the others interleave between the read and the write
        session.add(
            AuditEvent(
                at=NOW,
                actor_kind="system",
                action="test",
                object_type="t",
                object_id=str(i),
                detail={"seen": seen},
            )
        )


async def _count(db: Database) -> int:
    async with db.read() as session:
        return (await session.exec(select(func.count()).select_from(AuditEvent))).one()


async def test_writers_that_read_first_queue_instead_of_failing(
    two_processes: tuple[Database, Database],
) -> None:
    """On SQLite a DEFERRED read-then-write transaction fails with "database is locked" when
    another writer commits in between; write units begin IMMEDIATE at their first statement,
    take turns within a process and wait for the write lock across processes."""
    first, second = two_processes
    await asyncio.gather(*(_read_then_write(first if i % 2 else second, i) for i in range(12)))
    assert await _count(first) == 12


class _AnotherProcessWriting:
    """Another process's unit of work that has written a row and goes on at work for 300 ms
    before it commits; meanwhile, how many turns this event loop gave other work (every 10 ms)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ticks = 0
        self._held = asyncio.Event()

    async def __aenter__(self) -> _AnotherProcessWriting:
        self.holder = asyncio.create_task(self._hold())
        await self._held.wait()
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._ticker.cancel()
        await self.holder

    async def _hold(self) -> None:
        async with self.db.write() as session:
            await (await session.connection()).execute(_TOUCH)
            self._held.set()
            await asyncio.sleep(0.3)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1


async def test_a_writer_waiting_for_another_process_leaves_the_event_loop_running(
    two_processes: tuple[Database, Database],
) -> None:
    """Both write one row: the second waits for the first to commit (SQLite: the database's
    write lock; PostgreSQL: the row lock) while its process goes on serving."""
    first, second = two_processes
    async with _AnotherProcessWriting(first) as other:
        async with second.write() as session:
            await (await session.connection()).execute(_TOUCH)
        ticks = other.ticks
    # The second writer waited (≥ 50 ms: the first held its lock for 300 ms), and meanwhile
    # the loop went on running other work.
    assert ticks >= 5


async def test_a_case_number_never_freezes_the_event_loop(
    two_processes: tuple[Database, Database],
) -> None:
    """A case number is a write. On SQLite it waits for the write lock another process holds
    as every write does, the loop going on serving; on PostgreSQL it does not wait at all."""
    first, second = two_processes
    async with _AnotherProcessWriting(first) as other:
        async with second.write() as unit:
            taken = next_case_seq(second, unit, "450305", 2026)
            seq = await asyncio.wait_for(taken, timeout=30)
        ticks, holding = other.ticks, not other.holder.done()
    assert seq == 1
    if first.dialect == "sqlite":
        assert ticks >= 5
    else:
        assert holding


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return new_sqlite_database(tmp_path)


async def test_a_sqlite_writer_gives_up_after_the_busy_timeout(sqlite_url: str) -> None:
    """SQLite only: PostgreSQL writers wait on row locks, with no database-wide timeout."""
    url = sqlite_url
    first, impatient = _database(url), _database(url, busy_timeout_ms=50)
    try:
        async with first.write() as session:
            await (await session.connection()).execute(_TOUCH)  # holds the write lock
            with pytest.raises(OperationalError, match="database is locked"):
                await _read_then_write(impatient, 1)
        assert await _count(impatient) == 0
    finally:
        await first.dispose()
        await impatient.dispose()


async def test_a_case_number_taken_is_held_only_on_sqlite(
    two_processes: tuple[Database, Database],
) -> None:
    """Every new incident of a district takes the district's next case number. On PostgreSQL
    the counter commits at once (`Database.counters`), so a unit of work opening an incident
    never waits for another still at work on the counter's row. On SQLite the unit counts in
    its own transaction (writes are one at a time there anyway): the other waits for it."""
    first, second = two_processes

    async def take(db: Database) -> int:
        async with db.write() as unit:
            return await next_case_seq(db, unit, "450305", 2026)

    async with first.write() as unit:
        assert await next_case_seq(first, unit, "450305", 2026) == 1
        other = asyncio.create_task(take(second))
        if first.dialect == "postgresql":
            assert await asyncio.wait_for(other, timeout=30) == 2
        else:
            await asyncio.sleep(0.05)
            assert not other.done()  # waiting for the write lock this unit holds
    assert await asyncio.wait_for(other, timeout=30) == 2
    assert await take(second) == 3


async def test_a_sqlite_unit_counts_within_itself(
    two_processes: tuple[Database, Database],
) -> None:
    """A SQLite unit's case number is its own, gone if it rolls back (a second connection
    would wait for the write lock the unit holds). PostgreSQL's count commits at once."""
    first, _ = two_processes
    with pytest.raises(LookupError):
        async with first.write() as unit:
            taken = next_case_seq(first, unit, "450305", 2026)
            assert await asyncio.wait_for(taken, timeout=30) == 1
            raise LookupError("roll the unit back")
    async with first.write() as unit:
        expected = 1 if first.dialect == "sqlite" else 2
        assert await next_case_seq(first, unit, "450305", 2026) == expected


async def test_a_write_unit_commits_what_it_only_added_and_nothing_when_it_fails(
    fresh_database_url: str,
) -> None:
    """A unit that never ran a statement is left alone when it ends (nothing to commit), but
    one that only added rows, unflushed, has them to commit; a failing one stores nothing,
    whether it fails in its block or in its commit."""
    db = _database(fresh_database_url)

    def event(i: int, **columns: Any) -> AuditEvent:
        return AuditEvent(
            at=NOW, actor_kind="system", action="test", object_type="t", object_id=str(i), **columns
        )

    try:
        async with db.write():
            pass
        async with db.write() as session:
            session.add(event(1))
        with pytest.raises(LookupError):
            async with db.write() as session:
                session.add(event(2))
                await session.flush()
                raise LookupError("roll the unit back")
        async with db.write() as session:
            taken = (await session.exec(select(AuditEvent.id))).one()
        with pytest.raises(IntegrityError):
            async with db.write() as session:
                session.add(event(3))
                session.add(event(4, id=taken))  # the commit's flush fails on the key
        assert await _count(db) == 1
        async with db.write() as session:  # the failed unit's connection is clean again
            session.add(event(5))
        assert await _count(db) == 2
    finally:
        await db.dispose()
