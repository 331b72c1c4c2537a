"""Webhook subscriptions, deliveries (one per subscription and event), attempts, fan-out cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id

PENDING, DELIVERING, SUCCEEDED, FAILED = "pending", "delivering", "succeeded", "failed"
DELIVERY_STATUSES = (PENDING, DELIVERING, SUCCEEDED, FAILED)
FANOUT_CURSOR = "fanout"


class WebhookSubscription(SQLModel, table=True):
    """Where an API key wants events sent. The secret is kept to sign; it is shown only once."""

    __tablename__ = "webhook_subscriptions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    api_key_id: str = Field(max_length=32, foreign_key="api_keys.id", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cell_code: str | None = Field(default=None, max_length=40, foreign_key="cells.code")
    secret: str = Field(max_length=500)  # sealed (app/webhooks/sealing.py)
    created_at: datetime = Field(sa_type=UtcDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    disabled_reason: str | None = Field(default=None, max_length=200)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: its state, lease and schedule."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        # The claim query: due rows by state and time.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # Per-incident ordering: is an earlier event of this incident still on its way?
        Index("ix_webhook_deliveries_order", "subscription_id", "incident_id", "event_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    subscription_id: str = Field(max_length=32, foreign_key="webhook_subscriptions.id")
    event_id: int = Field(foreign_key="outbox_events.id")
    incident_id: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claim_token: str | None = Field(default=None, max_length=32)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: what came back, or what went wrong."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=32, foreign_key="webhook_deliveries.id", index=True)
    attempt: int
    at: datetime = Field(sa_type=UtcDateTime)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int


class WebhookCursor(SQLModel, table=True):
    """How far the outbox has been expanded into deliveries (the last event id done)."""

    __tablename__ = "webhook_cursors"

    name: str = Field(primary_key=True, max_length=32)
    last_event_id: int = Field(default=0, sa_column_kwargs={"autoincrement": False})
