"""The connection pools serve requests waiting for a connection in the order they came."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlalchemy.util.queue import Empty

from app.config import Settings
from app.db import Database, create_engine
from app.dbpool import FirstComeQueue
from tests.conftest import TEST_SECRET

_QUEUED = 0.02  # s: ample for a task to reach the pool's line; the order is what is asserted


def _engine(url: str, pool_size: int) -> AsyncEngine:
    settings = Settings(database_url=url, secret_key=TEST_SECRET, db_pool_size=pool_size)
    return create_engine(settings.url, settings)


def _units(db: Database, pool: str) -> AbstractAsyncContextManager[object]:
    return db.bare() if pool == "units" else db.bookkeeping()


@pytest.mark.parametrize("pool", ["units", "bookkeeping"])
async def test_a_connection_given_back_goes_to_the_request_that_waited_longest(
    database_url: str, pool: str
) -> None:
    """Both connections taken, a third request waits; the first, having given its connection
    back, asks again at once and goes to the end of the line. (A plain asyncio queue would
    give the connection back to whoever asks next: under load a few requests then wait
    several times as long as the others.) The units' pool and the bookkeeping pool alike."""
    db = Database(_engine(database_url, pool_size=2))  # bookkeeping keeps 2 too (the least)
    served: list[str] = []
    given_back = {name: asyncio.Event() for name in ("first", "second")}

    async def use(name: str, again: bool = False) -> None:
        async with _units(db, pool):
            served.append(name)
            if name in given_back:
                await given_back[name].wait()
        if again:
            async with _units(db, pool):
                served.append(f"{name} again")

    async def served_at_length(n: int) -> None:  # connecting may take a while
        async with asyncio.timeout(10):
            while len(served) < n:
                await asyncio.sleep(0.001)

    try:
        first = asyncio.create_task(use("first", again=True))
        await served_at_length(1)
        second = asyncio.create_task(use("second"))
        await served_at_length(2)
        third = asyncio.create_task(use("third"))
        await asyncio.sleep(_QUEUED)  # the third is waiting: no connection to open
        given_back["first"].set()
        await asyncio.sleep(_QUEUED)
        given_back["second"].set()
        await asyncio.gather(first, second, third)
        assert served == ["first", "second", "third", "first again"]
    finally:
        await db.dispose()


async def _get(queue: FirstComeQueue[str], timeout: float | None = None) -> str:
    item: str = await greenlet_spawn(queue.get, True, timeout)
    return item


async def test_a_wait_that_times_out_takes_nothing_from_those_after_it() -> None:
    queue: FirstComeQueue[str] = FirstComeQueue(maxsize=1)
    with pytest.raises(Empty):
        await _get(queue, timeout=_QUEUED)
    with pytest.raises(Empty):
        queue.get_nowait()
    queue.put_nowait("connection")
    assert await _get(queue, timeout=_QUEUED) == "connection"


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_connection_on() -> None:
    """A request cancelled (its client went away) just as a connection was handed to it: the
    next in line gets the connection, and none is lost."""
    queue: FirstComeQueue[str] = FirstComeQueue(maxsize=2)
    first = asyncio.create_task(_get(queue))
    second = asyncio.create_task(_get(queue))
    await asyncio.sleep(_QUEUED)
    queue.put_nowait("connection")  # handed to the first, which has not run yet
    first.cancel()
    assert await asyncio.wait_for(second, timeout=1) == "connection"
    with pytest.raises(asyncio.CancelledError):
        await first
    queue.put_nowait("connection")
    assert queue.get_nowait() == "connection"
    with pytest.raises(Empty):
        queue.get_nowait()
