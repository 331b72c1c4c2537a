"""API shapes for webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["incident.created", "incident.updated", "incident.overdue", "report.created"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://dashboard.example.gov.cn/hooks/burnban",
                    "events": ["incident.created", "incident.updated"],
                    "cell": "450305001",
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2000)
    events: list[EventType] = Field(min_length=1)
    cell: str | None = Field(
        default=None, max_length=40, description="Only events of incidents under this cell."
    )
    api_key_id: str | None = Field(
        default=None,
        max_length=32,
        description="An admin names the API key the subscription is for; a key subscribes "
        "for itself (its own id, or nothing)",
    )


class WebhookOut(BaseModel):
    id: str
    api_key_id: str = Field(description="The API key the subscription belongs to")
    url: str
    events: list[EventType]
    cell: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="whsec_… — the key for checking webhook-signature. Shown once, in this answer."
    )


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str = Field(description="The webhook-id header: the event's id, stable on retries.")
    event_type: str
    status: Literal["pending", "delivering", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    history: list[AttemptOut]
