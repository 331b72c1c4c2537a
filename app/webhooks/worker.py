"""The delivery worker: fan out the outbox, claim due deliveries, send them signed, record.

At least once: a delivery is marked done only after its receiver answered 2xx; a worker that
dies holding a claim loses it when the lease runs out and another worker sends it again.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.config import DEV_DATA_KEY
from app.db import Database
from app.incidents import escalation
from app.outbox.notifications import OutboxNotifications
from app.webhooks import fanout, signing, targets
from app.webhooks.claims import Claimed, claim_due
from app.webhooks.models import (
    DELIVERING,
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.webhooks.sealing import InvalidToken, SecretBox

# After the n-th failed attempt the next waits RETRY_DELAYS[n-1]; after the last, it has failed.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
SEND_TIMEOUT_SECONDS = 15.0
ERROR_CHARS = 500

_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_SUBSCRIPTIONS = WebhookSubscription.__table__  # type: ignore[attr-defined]
_ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
log = structlog.get_logger(__name__)


def _jitter() -> float:
    return random.uniform(0.9, 1.1)


@dataclass(frozen=True)
class WorkerOptions:
    allow_private: bool = False
    batch: int = 50
    # Longer than one batch takes to send (all of it goes out at once, each send at most 15 s).
    lease: timedelta = timedelta(minutes=2)
    timeout: float = SEND_TIMEOUT_SECONDS
    poll_seconds: float = 1.0
    jitter: Callable[[], float] = field(default=_jitter)
    # Opens the subscriptions' sealed secrets: SecretBox.of(settings) in a service.
    box: SecretBox = field(default_factory=lambda: SecretBox(DEV_DATA_KEY))


@dataclass
class DispatchCounts:
    scanned: int = 0  # outbox events read by the fan-out, subscribed to or not
    fanned_out: int = 0
    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    stale: int = 0  # results dropped because the claim had passed to another worker
    escalated: int = 0  # incident.overdue events this round announced (app/incidents/escalation)

    @property
    def busy(self) -> bool:
        return bool(self.scanned or self.claimed)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: timedelta | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def client(timeout: float = SEND_TIMEOUT_SECONDS) -> httpx.AsyncClient:
    """The HTTP client deliveries go out with: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": "burnban-webhooks/1"},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


async def dispatch_once(
    db: Database, clock: Clock, http: httpx.AsyncClient, options: WorkerOptions | None = None
) -> DispatchCounts:
    """One round: fan out new events, claim what is due, send it all at once, record it."""
    options = options or WorkerOptions()
    counts = DispatchCounts()
    # 督办 first, so that the overdue events it writes go out in this same round.
    counts.escalated = await escalation.sweep(db, clock.now(), options.batch)
    counts.scanned, counts.fanned_out = await fanout.fan_out(db, clock.now(), options.batch)
    claimed = await claim_due(db, clock.now(), options.batch, options.lease)
    counts.claimed = len(claimed)
    if claimed:
        # Each target is resolved and checked once a round, right before that round's sends.
        urls = list(dict.fromkeys(item.url for item in claimed))
        pinned = await asyncio.gather(*(_pin(url, options.allow_private) for url in urls))
        checked = dict(zip(urls, pinned, strict=True))
        outcomes = await asyncio.gather(
            *(send(http, item, checked[item.url], clock, options) for item in claimed)
        )
        await record(db, list(zip(claimed, outcomes, strict=True)), clock.now(), options, counts)
    return counts


def body_of(item: Claimed) -> str:
    """The request body: {"type", "timestamp", "data"}, the same bytes on every retry."""
    document = {
        "type": item.event_type,
        "timestamp": item.event_created_at.isoformat().replace("+00:00", "Z"),
        "data": item.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def _pin(url: str, allow_private: bool) -> targets.Pinned | targets.TargetRefused:
    try:
        return await targets.pin(url, allow_private)
    except targets.TargetRefused as exc:
        return exc


async def send(
    http: httpx.AsyncClient,
    item: Claimed,
    target: targets.Pinned | targets.TargetRefused,
    clock: Clock,
    options: WorkerOptions,
) -> Outcome:
    """POST one delivery to its checked address, signed for this moment; never raises."""
    started = time.perf_counter()
    body = body_of(item)
    try:
        if isinstance(target, targets.TargetRefused):
            raise target
        secret = options.box.open(item.secret)
        headers = {
            **target.headers,
            **signing.headers(secret, signing.message_id(item.event_id), clock.now(), body),
        }
        async with asyncio.timeout(options.timeout):
            request = http.build_request(
                "POST",
                target.url,
                content=body.encode(),
                headers=headers,
                extensions=target.extensions,
            )
            response = await http.send(request, stream=True)
            await response.aclose()  # the status is all we need; never read a receiver's body
        return Outcome(
            response.status_code, None, _retry_after(response, clock.now()), _ms(started)
        )
    except targets.TargetRefused as exc:
        return Outcome(None, f"refused: {exc}", None, _ms(started))
    except InvalidToken:
        error = "not sent: the secret was sealed under a data key this worker does not hold"
        return Outcome(None, error, None, _ms(started))
    except TimeoutError:
        return Outcome(None, f"timed out after {options.timeout:g} s", None, _ms(started))
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS], None, _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """Retry-After on 429 and 503, in seconds or as an HTTP date."""
    value = response.headers.get("retry-after")
    if response.status_code not in (429, 503) or not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None


def next_delay(attempt: int, outcome: Outcome, options: WorkerOptions) -> timedelta | None:
    """How long to wait before the next attempt, or None when this was the last."""
    if attempt >= MAX_ATTEMPTS:
        return None
    if outcome.retry_after is not None:
        return min(outcome.retry_after, RETRY_DELAYS[-1])
    return RETRY_DELAYS[attempt - 1] * options.jitter()


async def record(
    db: Database,
    results: list[tuple[Claimed, Outcome]],
    now: datetime,
    options: WorkerOptions,
    counts: DispatchCounts,
) -> None:
    """Write each outcome, if this worker still holds the claim (else another has taken it)."""
    attempts: list[dict[str, object]] = []
    async with db.write() as session:
        conn = await session.connection()
        recorded = await _record_successes(conn, [r for r in results if r[1].ok], now)
        counts.succeeded += len(recorded)
        for item, outcome in results:
            if outcome.ok:
                if item.delivery_id in recorded:
                    attempts.append(_attempt(item, outcome, now))
                else:
                    counts.stale += 1
                continue
            gone = outcome.status_code == 410
            delay = None if gone else next_delay(item.attempt, outcome, options)
            values: dict[str, object] = {
                "status": FAILED if delay is None else PENDING,
                "claimed_until": None,
                "claim_token": None,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
                "updated_at": now,
            }
            if delay is not None:
                values["next_attempt_at"] = now + delay
            changed = await conn.execute(
                update(_DELIVERIES)
                .where(*_held(item.claim_token, [item.delivery_id]))
                .values(**values)
            )
            if changed.rowcount != 1:
                counts.stale += 1
                continue
            attempts.append(_attempt(item, outcome, now))
            if delay is not None:
                counts.retrying += 1
            else:
                counts.failed += 1
            if gone:
                counts.failed += await _disable(conn, item.subscription_id, now)
        if attempts:
            await conn.execute(insert(_ATTEMPTS), attempts)


def _held(claim_token: str, ids: list[str]) -> tuple[Any, ...]:
    """Rows still claimed by this worker under this token."""
    return (
        _DELIVERIES.c.id.in_(ids),
        _DELIVERIES.c.claim_token == claim_token,
        _DELIVERIES.c.status == DELIVERING,
    )


async def _record_successes(
    conn: AsyncConnection, results: list[tuple[Claimed, Outcome]], now: datetime
) -> set[str]:
    """Mark delivered rows succeeded, one statement per token and status code; the ids done."""
    groups: dict[tuple[str, int | None], list[str]] = {}
    for item, outcome in results:
        groups.setdefault((item.claim_token, outcome.status_code), []).append(item.delivery_id)
    done: set[str] = set()
    for (token, status_code), ids in groups.items():
        rows = await conn.execute(
            update(_DELIVERIES)
            .where(*_held(token, ids))
            .values(
                status=SUCCEEDED,
                claimed_until=None,
                claim_token=None,
                last_status_code=status_code,
                last_error=None,
                updated_at=now,
            )
            .returning(_DELIVERIES.c.id)
        )
        done.update(row.id for row in rows)
    return done


def _attempt(item: Claimed, outcome: Outcome, now: datetime) -> dict[str, object]:
    return {
        "delivery_id": item.delivery_id,
        "attempt": item.attempt,
        "at": now,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }


async def _disable(conn: AsyncConnection, subscription_id: str, now: datetime) -> int:
    """410 Gone: the receiver asks for no more. Disable it and fail what was waiting for it."""
    await conn.execute(
        update(_SUBSCRIPTIONS)
        .where(_SUBSCRIPTIONS.c.id == subscription_id, _SUBSCRIPTIONS.c.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason="the receiver answered 410 Gone")
    )
    dropped = await conn.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.subscription_id == subscription_id, _DELIVERIES.c.status == PENDING)
        .values(status=FAILED, last_error="the webhook was disabled (410 Gone)", updated_at=now)
    )
    log.warning("webhook_disabled", subscription_id=subscription_id, reason="410 Gone")
    return int(dropped.rowcount)


async def run(
    db: Database,
    clock: Clock,
    options: WorkerOptions,
    stop: asyncio.Event | None = None,
    notifications: OutboxNotifications | None = None,
) -> None:
    """Deliver until stopped: back to back while there is work; else when PostgreSQL says
    new events committed, or every poll_seconds."""
    stop = stop or asyncio.Event()
    notifications = notifications or OutboxNotifications(db.engine)
    async with client(options.timeout) as http:
        try:
            while not stop.is_set():
                try:
                    counts = await dispatch_once(db, clock, http, options)
                except Exception:  # noqa: BLE001 - a database blip must not end the worker
                    log.exception("webhook_dispatch_failed")
                    counts = DispatchCounts()
                if counts.busy:  # more may be waiting: no pause (events nobody subscribed to)
                    log.info("webhook_dispatch", **vars(counts))
                    continue
                await notifications.wait(stop, options.poll_seconds)
        finally:
            await notifications.close()
