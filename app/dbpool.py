"""A connection pool that serves waiting requests in the order they came.

SQLAlchemy's asyncio pool keeps its idle connections in an `asyncio.Queue`, which lets a
newcomer barge: a connection given back is taken by whoever asks next, not by the request that
has waited longest, and a waiter woken for a connection that was taken meanwhile goes back to
the end of the line. When a worker has more requests in flight than connections, that turns a
fair wait into a lottery: most requests get a connection at once and a few wait several times
as long (bench/README.md, "Before and after 2026-12-05, late night").

Here a connection given back while requests wait is handed to the first of them, so that nobody
can take it in between, and a newcomer takes an idle connection only when nobody is waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, QueueCommon

_T = TypeVar("_T")


class FirstComeQueue(AsyncAdaptedQueue[_T]):
    """SQLAlchemy's queue of idle connections, given out first come, first served."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        # Those waiting, first first. While one waits, none is idle: each connection given
        # back goes to a waiter (`put_nowait`).
        self._waiting: deque[asyncio.Future[_T]] = deque()

    def put_nowait(self, item: _T) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # not cancelled
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # never full: the queue holds as many as the pool keeps

    def get_nowait(self) -> _T:
        if self._anyone_waiting():
            raise Empty()
        return super().get_nowait()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        if not block or not (self._anyone_waiting() or self.empty()):
            return self.get_nowait()
        try:
            item: _T = await_(self._wait(timeout))
        except TimeoutError as err:
            raise Empty() from err
        return item

    async def _wait(self, timeout: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:  # timed out, or the request was cancelled
            if waiter.done() and not waiter.cancelled():  # handed one meanwhile: pass it on
                self.put_nowait(waiter.result())
            raise  # a cancelled waiter leaves the line when it reaches its head

    def _anyone_waiting(self) -> bool:
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()
        return bool(self._waiting)


class FirstComePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool, with its idle connections in a `FirstComeQueue`."""

    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = FirstComeQueue
