"""Fan-out: expand outbox events into one delivery per matching subscription, in id order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from app.auth.models import ApiKey
from app.db import Database
from app.dbtypes import new_id
from app.incidents.models import Incident
from app.outbox.models import OutboxEvent
from app.webhooks import claims
from app.webhooks.models import (
    FANOUT_CURSOR,
    PENDING,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)

_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
_CURSORS = WebhookCursor.__table__  # type: ignore[attr-defined]
_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_SUBSCRIPTIONS = WebhookSubscription.__table__  # type: ignore[attr-defined]
_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]


async def fan_out(db: Database, now: datetime, batch: int) -> tuple[int, int]:
    """Expand the next `batch` outbox events: how many events were read, how many deliveries
    they made (none when no subscription matches them).

    The cursor row is locked for the transaction, so concurrent workers take turns, and it
    moves in the same transaction as the deliveries it accounts for.
    """
    horizon = await claims.outbox_horizon(db)
    async with db.write() as session:
        conn = await session.connection()
        cursor = (
            await conn.execute(
                select(_CURSORS.c.last_event_id)
                .where(_CURSORS.c.name == FANOUT_CURSOR)
                .with_for_update()
            )
        ).scalar_one()
        query = select(_OUTBOX).where(_OUTBOX.c.id > cursor).order_by(_OUTBOX.c.id).limit(batch)
        if horizon is not None:
            query = query.where(_OUTBOX.c.id <= horizon)
        events = list(await conn.execute(query))
        if not events:
            return 0, 0
        subscriptions = list(
            await conn.execute(
                select(_SUBSCRIPTIONS)
                .join(_KEYS, _KEYS.c.id == _SUBSCRIPTIONS.c.api_key_id)
                .where(_SUBSCRIPTIONS.c.disabled_at.is_(None), _KEYS.c.revoked_at.is_(None))
            )
        )
        rows: list[dict[str, Any]] = []
        if subscriptions:
            places = await _incident_cells(conn, {e.incident_id for e in events if e.incident_id})
            for event in events:
                cells = _cells_of(event, places)
                for sub in subscriptions:
                    if _matches(sub, event, cells):
                        rows.append(_delivery(sub.id, event, now))
        if rows:
            await conn.execute(insert(_DELIVERIES), rows)
        await conn.execute(
            update(_CURSORS)
            .where(_CURSORS.c.name == FANOUT_CURSOR)
            .values(last_event_id=events[-1].id)
        )
        return len(events), len(rows)


async def _incident_cells(conn: Any, incident_ids: set[str]) -> dict[str, set[str]]:
    if not incident_ids:
        return {}
    found = await conn.execute(
        select(
            _INCIDENTS.c.id,
            _INCIDENTS.c.village_code,
            _INCIDENTS.c.township_code,
            _INCIDENTS.c.district_code,
        ).where(_INCIDENTS.c.id.in_(incident_ids))
    )
    return {row.id: {row.village_code, row.township_code, row.district_code} for row in found}


def _cells_of(event: Any, places: Mapping[str, set[str]]) -> set[str]:
    """The cells an event happened in: its payload's own cell chain where it names one (where
    the report or incident was when the event was written), else its incident's, else its
    district."""
    cell = event.payload.get("cell") if isinstance(event.payload, dict) else None
    if isinstance(cell, dict):
        codes = {level.get("code") for level in cell.values() if isinstance(level, dict)}
        named = {c for c in codes if isinstance(c, str)}
        if named:
            return named
    if event.incident_id and event.incident_id in places:
        return places[event.incident_id]
    return {event.district_code} if event.district_code else set()


def _matches(sub: Any, event: Any, cells: Iterable[str]) -> bool:
    return (
        event.type in sub.events
        and event.created_at >= sub.created_at
        and (sub.cell_code is None or sub.cell_code in cells)
    )


def _delivery(subscription_id: str, event: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "subscription_id": subscription_id,
        "event_id": event.id,
        "incident_id": event.incident_id,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
