"""Write outbox events in the caller's transaction; the webhook worker delivers them later."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app.outbox.models import OutboxEvent

_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]


async def emit(
    session: AsyncSession,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    incident_id: str | None = None,
    district_code: str | None = None,
) -> None:
    """Append one event; it commits or rolls back with the change it describes."""
    conn = await session.connection()
    await conn.execute(
        insert(_OUTBOX).values(
            type=event_type,
            payload=payload,
            created_at=now,
            incident_id=incident_id,
            district_code=district_code,
        )
    )


@dataclass(frozen=True)
class Event:
    """An event to append along with other writes (see `rows`)."""

    type: str
    payload: dict[str, Any]
    incident_id: str | None = None
    district_code: str | None = None


async def append(session: AsyncSession, events: Sequence[Event], now: datetime) -> None:
    """Append the events in order (their ids follow it), in the caller's unit of work."""
    conn = await session.connection()
    await conn.execute(insert(_OUTBOX), _rows(events, now))


def _rows(events: Sequence[Event], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "type": e.type,
            "payload": e.payload,
            "created_at": now,
            "incident_id": e.incident_id,
            "district_code": e.district_code,
        }
        for e in events
    ]
