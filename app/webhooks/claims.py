"""Row claiming for the delivery workers: the one place their SQL differs by database.

PostgreSQL workers run side by side: a worker locks the due rows it takes with
`FOR UPDATE SKIP LOCKED`, so others pass over them instead of waiting, and marks them with a
lease (`claimed_until`) and a token. SQLite has one writer at a time (write units begin
IMMEDIATE), so the same statement, without the lock clause, is already exclusive.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.orm import aliased

from app.auth.models import ApiKey
from app.db import Database
from app.outbox.models import OutboxEvent
from app.webhooks.models import DELIVERING, PENDING, WebhookDelivery, WebhookSubscription

_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_SUBSCRIPTIONS = WebhookSubscription.__table__  # type: ignore[attr-defined]
_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds until `claimed_until`, with what it needs to send it."""

    delivery_id: str
    claim_token: str
    attempt: int
    subscription_id: str
    url: str
    secret: str
    event_id: int
    event_type: str
    event_created_at: datetime
    payload: dict[str, Any]


async def outbox_horizon(db: Database) -> int | None:
    """The highest outbox id below which no event can still appear, or None if no bound is
    needed.

    PostgreSQL hands out ids when rows are inserted, not when they commit, so a reader can see
    event 11 while event 10 is still uncommitted, and a cursor moved past 11 would skip 10.
    A SHARE lock waits for every transaction that has inserted into the outbox to end (and
    holds new inserts for the instant it is held); every id up to the maximum then seen is
    final. SQLite's single writer commits ids in order, so everything visible is final.
    """
    if db.dialect != "postgresql":
        return None
    async with db.write() as session:
        conn = await session.connection()
        await conn.execute(text("LOCK TABLE outbox_events IN SHARE MODE"))
        top = (await conn.execute(select(func.coalesce(func.max(_OUTBOX.c.id), 0)))).scalar_one()
    return int(top)


async def claim_due(db: Database, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Take up to `limit` due deliveries for this worker until now + lease.

    Due: pending and scheduled by now, or delivering whose lease has run out (its worker died).
    An incident's later event waits while an earlier one to the same subscription is on its
    way, so receivers see each incident's events in order.
    """
    d = _DELIVERIES
    earlier = aliased(_DELIVERIES)
    token = secrets.token_hex(16)
    due = (
        select(d.c.id)
        .join(_SUBSCRIPTIONS, _SUBSCRIPTIONS.c.id == d.c.subscription_id)
        .join(_KEYS, _KEYS.c.id == _SUBSCRIPTIONS.c.api_key_id)
        .where(
            _SUBSCRIPTIONS.c.disabled_at.is_(None),
            _KEYS.c.revoked_at.is_(None),
            or_(
                and_(d.c.status == PENDING, d.c.next_attempt_at <= now),
                and_(d.c.status == DELIVERING, d.c.claimed_until < now),
            ),
            ~exists().where(
                earlier.c.subscription_id == d.c.subscription_id,
                earlier.c.incident_id == d.c.incident_id,
                earlier.c.event_id < d.c.event_id,
                earlier.c.status.in_((PENDING, DELIVERING)),
            ),
        )
        .order_by(d.c.next_attempt_at, d.c.event_id)
        .limit(limit)
        .with_for_update(of=d, skip_locked=True)  # rendered on PostgreSQL only
    )
    async with db.write() as session:
        conn = await session.connection()
        ids = [row.id for row in await conn.execute(due)]
        if not ids:
            return []
        await conn.execute(
            update(d)
            .where(d.c.id.in_(ids))
            .values(
                status=DELIVERING,
                attempts=d.c.attempts + 1,
                claimed_until=now + lease,
                claim_token=token,
                updated_at=now,
            )
        )
        rows = await conn.execute(
            select(
                d.c.id,
                d.c.attempts,
                d.c.subscription_id,
                _SUBSCRIPTIONS.c.url,
                _SUBSCRIPTIONS.c.secret,
                d.c.event_id,
                _OUTBOX.c.type,
                _OUTBOX.c.created_at,
                _OUTBOX.c.payload,
            )
            .join(_SUBSCRIPTIONS, _SUBSCRIPTIONS.c.id == d.c.subscription_id)
            .join(_OUTBOX, _OUTBOX.c.id == d.c.event_id)
            .where(d.c.id.in_(ids), d.c.claim_token == token)
            .order_by(d.c.event_id)
        )
        return [
            Claimed(
                delivery_id=r.id,
                claim_token=token,
                attempt=int(r.attempts),
                subscription_id=r.subscription_id,
                url=r.url,
                secret=r.secret,
                event_id=int(r.event_id),
                event_type=r.type,
                event_created_at=r.created_at,
                payload=dict(r.payload),
            )
            for r in rows
        ]
