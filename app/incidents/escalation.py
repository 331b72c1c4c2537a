"""督办 escalation: one `incident.overdue` event for each stage of an incident past its limit.

A stage is the step an incident waits for — `acknowledge` while dispatched, `arrive` while
acknowledged, `resolve` while on site — with the incident's `due_at`, or `supervision` with the
deadline a supervisor set (`supervision_due_at`) while the incident is still being worked. When
its time passes, the webhook worker's round (app/webhooks/worker.py) claims it by inserting a
notice keyed on (incident, stage, due time) with ON CONFLICT DO NOTHING: of several workers
sweeping at once, only the one whose insert took writes the event and the timeline entry, in
the same transaction. A stage that starts again with a new limit (a reassignment, a reopening,
a new supervision deadline) is a new stage and is announced again when it passes.

Only limits that passed within ANNOUNCE_WINDOW are announced: a sweep reads a bounded range of
the (status, due_at) index rather than every case left unworked for months, and a database
upgraded to this revision does not announce its whole history at once. A worker stopped for
longer than the window leaves the stages that passed meanwhile unannounced (they still show as
`overdue` everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, exists, insert, literal, select, text
from sqlalchemy.sql.elements import ColumnElement

from app.db import Database
from app.dbtypes import UtcDateTime
from app.incidents.models import WORKING_STATUSES, Incident, IncidentEvent, OverdueNotice
from app.outbox import service as outbox

_INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
_NOTICES: Table = OverdueNotice.__table__  # type: ignore[attr-defined]
_EVENTS: Table = IncidentEvent.__table__  # type: ignore[attr-defined]
STAGE_OF_STATUS = {"dispatched": "acknowledge", "acknowledged": "arrive", "on_site": "resolve"}
SUPERVISION = "supervision"
ANNOUNCE_WINDOW = timedelta(hours=24)

# The claim: one row per stage, whoever inserts it first. Spelt alike on SQLite and PostgreSQL.
_CLAIM = text(
    "INSERT INTO incident_overdue_notices (incident_id, stage, due_at, noticed_at) "
    "VALUES (:incident_id, :stage, :due_at, :now) "
    "ON CONFLICT (incident_id, stage, due_at) DO NOTHING RETURNING id"
).bindparams(bindparam("due_at", type_=UtcDateTime()), bindparam("now", type_=UtcDateTime()))


@dataclass(frozen=True)
class PastDue:
    """A stage of an incident whose limit has passed."""

    incident_id: str
    case_number: str
    district_code: str
    township_code: str
    village_code: str
    category: str
    status: str
    version: int
    supervision_level: str | None
    stage: str
    due_at: datetime


async def sweep(db: Database, now: datetime, batch: int = 100) -> int:
    """Announce up to `batch` stages that passed their limits and were not announced yet;
    how many this call announced. Reads first, so that a round with nothing past due writes
    nothing (on SQLite, takes no turn to write)."""
    async with db.read() as session:
        conn = await session.connection()
        found = [
            PastDue(**row._mapping)
            for query in (_stages_past_due(now, batch), _supervision_past_due(now, batch))
            for row in await conn.execute(query)
        ]
    if not found:
        return 0
    announced = 0
    async with db.write() as session:
        conn = await session.connection()
        for past in found[:batch]:
            params = {
                "incident_id": past.incident_id,
                "stage": past.stage,
                "due_at": past.due_at,
                "now": now,
            }
            if (await conn.execute(_CLAIM, params)).first() is None:
                continue  # another worker announced it
            announced += 1
            await conn.execute(insert(_EVENTS).values(**_timeline_row(past, now)))
            await outbox.emit(
                session,
                "incident.overdue",
                payload(past),
                now,
                incident_id=past.incident_id,
                district_code=past.district_code,
            )
    return announced


def payload(past: PastDue) -> dict[str, Any]:
    """The event's data: which incident, which stage, and the limit it passed."""
    return {
        "id": past.incident_id,
        "case_number": past.case_number,
        "category": past.category,
        "status": past.status,
        "version": past.version,
        "stage": past.stage,
        "due_at": past.due_at.isoformat().replace("+00:00", "Z"),
        "township_code": past.township_code,
        "village_code": past.village_code,
        "supervision_level": past.supervision_level,
    }


def _timeline_row(past: PastDue, now: datetime) -> dict[str, Any]:
    return {
        "incident_id": past.incident_id,
        "district_code": past.district_code,
        "at": now,
        "actor_id": None,
        "actor_name": None,
        "action": "overdue",
        "from_status": None,
        "to_status": None,
        "note": f"{past.stage} limit passed ({past.due_at.isoformat()})",
    }


def _columns(stage: ColumnElement[str], due: ColumnElement[datetime]) -> list[Any]:
    c = _INCIDENTS.c
    return [
        c.id.label("incident_id"),
        c.case_number,
        c.district_code,
        c.township_code,
        c.village_code,
        c.category,
        c.status,
        c.version,
        c.supervision_level,
        stage.label("stage"),
        due.label("due_at"),
    ]


def _not_announced(stage: ColumnElement[str], due: ColumnElement[datetime]) -> Any:
    n = _NOTICES.c
    return ~exists().where(n.incident_id == _INCIDENTS.c.id, n.stage == stage, n.due_at == due)


def _stages_past_due(now: datetime, batch: int) -> Any:
    """Working incidents past `due_at` (the (status, due_at) index), not yet announced."""
    c = _INCIDENTS.c
    stage = case(STAGE_OF_STATUS, value=c.status)
    return (
        select(*_columns(stage, c.due_at))
        .where(
            c.status.in_(WORKING_STATUSES),
            c.due_at < literal(now, UtcDateTime()),
            c.due_at >= literal(now - ANNOUNCE_WINDOW, UtcDateTime()),
            _not_announced(stage, c.due_at),
        )
        .order_by(c.due_at)
        .limit(batch)
    )


def _supervision_past_due(now: datetime, batch: int) -> Any:
    """Supervised incidents still worked past the supervisor's own deadline."""
    c = _INCIDENTS.c
    stage = literal(SUPERVISION)
    return (
        select(*_columns(stage, c.supervision_due_at))
        .where(
            and_(
                c.status.in_(WORKING_STATUSES),
                c.supervision_level.is_not(None),
                c.supervision_due_at < literal(now, UtcDateTime()),
                c.supervision_due_at >= literal(now - ANNOUNCE_WINDOW, UtcDateTime()),
            ),
            _not_announced(stage, c.supervision_due_at),
        )
        .order_by(c.supervision_due_at)
        .limit(batch)
    )
