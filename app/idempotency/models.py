"""Idempotency key table: one row per caller and key, holding the first answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime

IN_FLIGHT, DONE = "in_flight", "done"


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("caller_kind", "caller_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    caller_kind: str = Field(max_length=16)
    caller_id: str = Field(max_length=32)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
