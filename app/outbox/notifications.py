"""Knowing when outbox events commit: PostgreSQL notifies listeners; elsewhere, poll.

Migration 5e8c2d7f1a39 makes every INSERT into outbox_events NOTIFY `burnban_outbox`, which
PostgreSQL delivers when the transaction commits (once per transaction, never on rollback). A
webhook worker waiting for work listens on a connection of its own, outside any pool, so a live
event goes out at once instead of at the next poll. The poll stays, for the moments the
connection is down and for SQLite, which has no notifications.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

CHANNEL = "burnban_outbox"
_CONNECT_TIMEOUT_S = 5.0

log = structlog.get_logger(__name__)


class OutboxNotifications:
    """Waits for outbox events to commit: until PostgreSQL says some did, or for the poll."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._arrived = asyncio.Event()
        self._conn: Any = None  # an asyncpg connection while listening
        self._failing = False  # the last attempt to listen failed (and said so)

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def wait(self, stop: asyncio.Event, poll_seconds: float) -> None:
        """Until events commit, `stop` is set, or `poll_seconds` pass (the fallback)."""
        await self._listen()
        waits = [asyncio.ensure_future(e.wait()) for e in (self._arrived, stop)]
        try:
            await asyncio.wait(waits, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        self._arrived.clear()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _listen(self) -> None:
        """Listen, where the database notifies and not already; if the connection fails,
        say so once and poll until the next wait tries again."""
        if self._engine.dialect.name != "postgresql" or self.listening:
            return
        await self.close()  # a connection that died
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs.setdefault("timeout", _CONNECT_TIMEOUT_S)  # an unreachable server delays the poll
        conn = None
        try:
            conn = await asyncpg.connect(*args, **kwargs)
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the worker polls meanwhile
            if conn is not None:
                conn.terminate()
            if not self._failing:
                log.warning("outbox_listen_failed", error=type(exc).__name__)
            self._failing = True
            return
        self._conn, self._failing = conn, False
        self._arrived.set()  # events may have committed while nobody was listening

    def _notified(self, *_: object) -> None:
        self._arrived.set()
