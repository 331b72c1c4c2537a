"""Webhook subscriptions: who may subscribe to what, and the record of their deliveries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.grid.models import Cell
from app.outbox.models import OutboxEvent
from app.pagination import decode_cursor, encode_cursor
from app.webhooks import signing, targets
from app.webhooks.models import (
    DELIVERING,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.webhooks.schemas import AttemptOut, DeliveryOut, WebhookCreated, WebhookIn, WebhookOut
from app.webhooks.sealing import SecretBox

_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]


async def subscribe(
    session: AsyncSession,
    owner: Principal,
    data: WebhookIn,
    allow_private: bool,
    box: SecretBox,
    now: datetime,
) -> WebhookCreated:
    """Store a subscription for a target that may be called, its secret sealed; the answer
    holds the secret itself."""
    key_id, key_cell = await _owning_key(session, owner, data.api_key_id)
    try:
        await targets.check(data.url, allow_private)
    except targets.TargetRefused as exc:
        raise _invalid("url", str(exc)) from exc
    cell_code = await _cell_for(session, key_cell, data.cell)
    secret = signing.new_secret()
    row = WebhookSubscription(
        api_key_id=key_id,
        url=data.url,
        events=list(dict.fromkeys(data.events)),
        cell_code=cell_code,
        secret=box.seal(secret),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return WebhookCreated(**to_schema(row).model_dump(), secret=secret)


async def _owning_key(
    session: AsyncSession, owner: Principal, named: str | None
) -> tuple[str, str | None]:
    """The id and cell of the key a new subscription belongs to: the calling key itself, or
    the live key an admin names."""
    if not owner.is_admin:
        if named is not None and named != owner.id:
            raise _invalid("api_key_id", "a key subscribes for itself only")
        return owner.id, owner.cell_code
    if named is None:
        raise _invalid("api_key_id", "an admin names the API key the subscription is for")
    key = await session.get(ApiKey, named)
    if key is None or key.revoked_at is not None:
        raise _invalid("api_key_id", f"no live API key {named!r}")
    return key.id, key.cell_code


async def _cell_for(session: AsyncSession, key_cell: str | None, wanted: str | None) -> str | None:
    """The subscription's cell: the one asked for, which must lie within the key's own cell."""
    if wanted is None:
        return key_cell
    cell = (await session.exec(sm_select(Cell).where(Cell.code == wanted))).first()
    if cell is None:
        raise _invalid("cell", f"unknown cell {wanted!r}")
    if key_cell is not None and key_cell not in await _ancestry(session, cell):
        raise _invalid("cell", f"cell {wanted!r} is outside this key's cell")
    return cell.code


async def _ancestry(session: AsyncSession, cell: Cell) -> set[str]:
    """The cell's code and the codes of every cell above it."""
    codes = {cell.code}
    parent = cell.parent_code
    while parent is not None and parent not in codes:
        codes.add(parent)
        above = (await session.exec(sm_select(Cell).where(Cell.code == parent))).first()
        parent = above.parent_code if above is not None else None
    return codes


def _invalid(field: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(msg, errors=[{"loc": ["body", field], "msg": msg}])


def to_schema(row: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        api_key_id=row.api_key_id,
        url=row.url,
        events=row.events,
        cell=row.cell_code,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


async def owned(
    session: AsyncSession, owner: Principal, subscription_id: str
) -> WebhookSubscription:
    """The caller's subscription (an admin's: any); another key's is not found (its existence
    is not revealed)."""
    row = await session.get(WebhookSubscription, subscription_id)
    if row is None or not (owner.is_admin or row.api_key_id == owner.id):
        raise errors.NotFound(f"no webhook {subscription_id!r}")
    return row


async def list_subscriptions(session: AsyncSession, owner: Principal) -> Sequence[WebhookOut]:
    """The calling key's subscriptions; every key's for an admin."""
    query = sm_select(WebhookSubscription).order_by(
        col(WebhookSubscription.created_at).desc(), col(WebhookSubscription.id)
    )
    if not owner.is_admin:
        query = query.where(WebhookSubscription.api_key_id == owner.id)
    return [to_schema(row) for row in await session.exec(query)]


async def enable(session: AsyncSession, owner: Principal, subscription_id: str) -> WebhookOut:
    """Send to a disabled subscription again (after its receiver answered 410 Gone, say): new
    events from now on; its failed deliveries can be retried one by one."""
    row = await owned(session, owner, subscription_id)
    row.disabled_at = None
    row.disabled_reason = None
    session.add(row)
    await session.flush()
    return to_schema(row)


async def reseal_secrets(session: AsyncSession, box: SecretBox) -> int:
    """Seal every stored secret again under the box's current key (key rotation); how many."""
    rows = list(await session.exec(sm_select(WebhookSubscription)))
    for row in rows:
        row.secret = box.reseal(row.secret)
        session.add(row)
    await session.flush()
    return len(rows)


async def unsubscribe(session: AsyncSession, owner: Principal, subscription_id: str) -> None:
    """Remove the subscription with its deliveries; nothing more is sent to it."""
    row = await owned(session, owner, subscription_id)
    conn = await session.connection()
    mine = select(_DELIVERIES.c.id).where(_DELIVERIES.c.subscription_id == row.id)
    await conn.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.delivery_id.in_(mine)))
    await conn.execute(delete(_DELIVERIES).where(_DELIVERIES.c.subscription_id == row.id))
    await session.delete(row)
    await session.flush()


async def list_deliveries(
    session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DeliveryOut], str | None]:
    """The subscription's deliveries, newest first, each with its attempts."""
    row = await owned(session, owner, subscription_id)
    query = (
        sm_select(WebhookDelivery, OutboxEvent.type)
        .join(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.event_id))
        .where(WebhookDelivery.subscription_id == row.id)
        .order_by(col(WebhookDelivery.event_id).desc(), col(WebhookDelivery.id).desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, int):
            raise errors.ValidationFailed(
                "cursor is not one this service issued",
                errors=[{"loc": ["query", "cursor"], "msg": "bad cursor"}],
            )
        query = query.where(col(WebhookDelivery.event_id) < after)
    found = list(await session.exec(query))
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        next_cursor = encode_cursor(found[-1][0].event_id)
    history = await _history(session, [delivery.id for delivery, _ in found])
    return [delivery_out(d, t, history.get(d.id, [])) for d, t in found], next_cursor


async def _history(session: AsyncSession, ids: list[str]) -> dict[str, list[AttemptOut]]:
    if not ids:
        return {}
    rows = await session.exec(
        sm_select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(ids))
        .order_by(col(WebhookAttempt.attempt), col(WebhookAttempt.id))
    )
    history: dict[str, list[AttemptOut]] = defaultdict(list)
    for a in rows:
        history[a.delivery_id].append(
            AttemptOut(
                attempt=a.attempt,
                at=a.at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
        )
    return history


def delivery_out(row: WebhookDelivery, event_type: str, history: list[AttemptOut]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=signing.message_id(row.event_id),
        event_type=event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        history=history,
    )


async def retry_delivery(
    session: AsyncSession, owner: Principal, subscription_id: str, delivery_id: str, now: datetime
) -> DeliveryOut:
    """Send a delivery again now, with a fresh schedule of retries (after a receiver is fixed)."""
    subscription = await owned(session, owner, subscription_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription.id:
        raise errors.NotFound(f"no delivery {delivery_id!r}")
    if subscription.disabled_at is not None:
        raise errors.Conflict("the webhook is disabled; enable it first (POST …/enable)")
    conn = await session.connection()
    changed = await conn.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == delivery.id, _DELIVERIES.c.status != DELIVERING)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            claimed_until=None,
            claim_token=None,
            updated_at=now,
        )
    )
    if changed.rowcount != 1:
        raise errors.Conflict("the delivery is being sent right now")
    await session.refresh(delivery)
    event = await session.get(OutboxEvent, delivery.event_id)
    assert event is not None  # webhook_deliveries.event_id is a foreign key
    history = await _history(session, [delivery.id])
    return delivery_out(delivery, event.type, history.get(delivery.id, []))
