"""HTTP routes for webhook subscriptions and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.auth.principal import Principal
from app.deps import ClockDep, SessionDep, SettingsDep, require
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from app.webhooks import service
from app.webhooks.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookOut
from app.webhooks.sealing import SecretBox

router = APIRouter(tags=["webhooks"])
# Subscriptions belong to API keys: a key with webhooks:manage manages its own, an admin every
# key's (and names the key a new one is for).
OwnerDep = Annotated[Principal, Depends(require("admin", scope="webhooks:manage"))]


@router.post(
    "/webhooks", operation_id="create_webhook", status_code=201, response_model=WebhookCreated
)
async def create_webhook(
    data: WebhookIn,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    owner: OwnerDep,
) -> WebhookCreated:
    """Subscribe a URL to events; the signing secret is in this answer only."""
    created = await service.subscribe(
        session, owner, data, settings.webhook_allow_private, SecretBox.of(settings), clock.now()
    )
    response.headers["Location"] = f"/api/v1/webhooks/{created.id}"
    return created


@router.get("/webhooks", operation_id="list_webhooks", response_model=Page[WebhookOut])
async def list_webhooks(session: SessionDep, owner: OwnerDep) -> Page[WebhookOut]:
    """The calling key's subscriptions; an admin's call, every key's."""
    items = await service.list_subscriptions(session, owner)
    return Page(items=list(items), next_cursor=None)


@router.get("/webhooks/{webhook_id}", operation_id="get_webhook", response_model=WebhookOut)
async def get_webhook(webhook_id: str, session: SessionDep, owner: OwnerDep) -> WebhookOut:
    """One of the calling key's subscriptions (without its secret)."""
    return service.to_schema(await service.owned(session, owner, webhook_id))


@router.post(
    "/webhooks/{webhook_id}/enable", operation_id="enable_webhook", response_model=WebhookOut
)
async def enable_webhook(webhook_id: str, session: SessionDep, owner: OwnerDep) -> WebhookOut:
    """Send to a disabled subscription again, from now on (its secret is unchanged)."""
    return await service.enable(session, owner, webhook_id)


@router.delete("/webhooks/{webhook_id}", operation_id="delete_webhook", status_code=204)
async def delete_webhook(webhook_id: str, session: SessionDep, owner: OwnerDep) -> Response:
    """Unsubscribe; nothing more is sent, pending deliveries included."""
    await service.unsubscribe(session, owner, webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=Page[DeliveryOut],
)
async def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    owner: OwnerDep,
    status: Literal["pending", "delivering", "succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[DeliveryOut]:
    """Deliveries newest first, with every attempt's status code or error."""
    items, next_cursor = await service.list_deliveries(
        session, owner, webhook_id, status, limit, cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    operation_id="retry_webhook_delivery",
    response_model=DeliveryOut,
)
async def retry_delivery(
    webhook_id: str, delivery_id: str, session: SessionDep, clock: ClockDep, owner: OwnerDep
) -> DeliveryOut:
    """Send a delivery again now (typically a failed one, once the receiver is fixed)."""
    return await service.retry_delivery(session, owner, webhook_id, delivery_id, clock.now())
