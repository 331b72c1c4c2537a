"""Retention: idempotency keys, finished webhook deliveries with their attempts, and rate-limit
windows are deleted once older than their settings say, a small batch at a time.

Each batch is a short write unit of its own (on PostgreSQL its rows locked `SKIP LOCKED`, so a
batch never waits for a request holding one), and requests' writes take their turns between
batches: no lock is held for long, on either database. Any number of processes may run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.idempotency.models import IdempotencyKey
from app.ratelimit.models import RateLimitCounter
from app.webhooks.models import FAILED, SUCCEEDED, WebhookAttempt, WebhookDelivery

BATCH = 500
EVERY = timedelta(hours=1)
# A rest between batches: a backlog (the first run on an old database) is worked off at a few
# thousand rows a second instead of at full speed, leaving the CPUs to reports. Reports ran
# 122-131/s alone and 101-102/s while a backlog of 100 000 keys was purged without rest
# (PostGIS, in-process, loaded machine).
PAUSE_S = 0.05

_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]
_COUNTERS = RateLimitCounter.__table__  # type: ignore[attr-defined]
_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept."""

    idempotency_keys: timedelta
    webhook_deliveries: timedelta
    rate_limit_counters: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(
            timedelta(days=settings.retention_idempotency_days),
            timedelta(days=settings.retention_webhook_days),
            timedelta(days=settings.retention_counters_days),
        )


@dataclass
class Purged:
    idempotency_keys: int = 0
    webhook_deliveries: int = 0
    webhook_attempts: int = 0
    rate_limit_counters: int = 0


async def purge(db: Database, now: datetime, retention: Retention, batch: int = BATCH) -> Purged:
    """Delete everything older than its retention, `batch` rows a unit of work."""
    purged = Purged()
    cutoff = now - retention.idempotency_keys
    purged.idempotency_keys = await _in_batches(db, lambda c: _old_keys(c, cutoff, batch), batch)
    cutoff_counters = now - retention.rate_limit_counters
    purged.rate_limit_counters = await _in_batches(
        db, lambda c: _old_windows(c, cutoff_counters, batch), batch
    )
    cutoff_webhooks = now - retention.webhook_deliveries
    while True:
        async with db.write() as session:
            deliveries, attempts = await _finished_deliveries(
                await session.connection(), cutoff_webhooks, batch
            )
        purged.webhook_deliveries += deliveries
        purged.webhook_attempts += attempts
        if deliveries < batch:
            break
        await asyncio.sleep(PAUSE_S)
    return purged


async def _in_batches(
    db: Database, one_batch: Callable[[AsyncConnection], Awaitable[int]], batch: int
) -> int:
    total = 0
    while True:
        async with db.write() as session:
            deleted = await one_batch(await session.connection())
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(PAUSE_S)  # requests' writes take their turns between batches


async def _old_keys(conn: AsyncConnection, cutoff: datetime, batch: int) -> int:
    """Keys stored before `cutoff`: a retry under one after that is a new request."""
    old = (
        select(_KEYS.c.id)
        .where(_KEYS.c.created_at < cutoff)
        .order_by(_KEYS.c.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
    )
    return int((await conn.execute(delete(_KEYS).where(_KEYS.c.id.in_(old)))).rowcount)


async def _old_windows(conn: AsyncConnection, cutoff: datetime, batch: int) -> int:
    """Rate-limit windows that began before `cutoff` (a key forgets its own older windows at its
    next count; these are the keys that never came back)."""
    old = (
        select(_COUNTERS.c.key, _COUNTERS.c.window_start)
        .where(_COUNTERS.c.window_start < cutoff)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    pk = tuple_(_COUNTERS.c.key, _COUNTERS.c.window_start)
    return int((await conn.execute(delete(_COUNTERS).where(pk.in_(old)))).rowcount)


async def _finished_deliveries(
    conn: AsyncConnection, cutoff: datetime, batch: int
) -> tuple[int, int]:
    """Succeeded or failed deliveries last touched before `cutoff`, with their attempts; never
    one still pending or being sent. (A finished delivery was due before it finished, so the
    due index finds them.)"""
    d = _DELIVERIES
    found = await conn.execute(
        select(d.c.id)
        .where(
            d.c.status.in_((SUCCEEDED, FAILED)),
            d.c.next_attempt_at < cutoff,
            d.c.updated_at < cutoff,
        )
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    ids = [row.id for row in found]
    if not ids:
        return 0, 0
    attempts = await conn.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.delivery_id.in_(ids)))
    await conn.execute(delete(d).where(d.c.id.in_(ids)))
    return len(ids), int(attempts.rowcount)


async def run(
    db: Database, clock: Clock, retention: Retention, stop: asyncio.Event, every: timedelta = EVERY
) -> None:
    """Purge now and every `every` until stopped; a failed round is logged and tried again."""
    while not stop.is_set():
        try:
            purged = await purge(db, clock.now(), retention)
            if any(vars(purged).values()):
                log.info("retention_purged", **vars(purged))
        except Exception:  # noqa: BLE001 - a database blip must not end the loop
            log.exception("retention_failed")
        try:
            await asyncio.wait_for(stop.wait(), every.total_seconds())
        except TimeoutError:
            pass
