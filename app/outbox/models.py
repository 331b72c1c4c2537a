"""Outbox event table: append-only, in the transaction of the change it describes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime

EVENT_TYPES = ("report.created", "incident.created", "incident.updated", "incident.overdue")


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_events"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=64)
    district_code: str | None = Field(default=None, max_length=40)
    incident_id: str | None = Field(default=None, max_length=32, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
