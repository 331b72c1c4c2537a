"""User and API key tables. Secrets are stored hashed only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.dbtypes import UtcDateTime, new_id

ROLES = ("grid_worker", "officer", "supervisor", "admin")
SCOPES = ("reports:write", "incidents:read", "grid:read", "webhooks:manage")
# A caller's columns: what app.auth.service reads of a user or a key to make a Principal.
USER_PRINCIPAL_COLUMNS = ("id", "name", "role", "cell_code", "agency_code")
KEY_PRINCIPAL_COLUMNS = ("id", "name", "scopes", "cell_code")


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    username: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    cell_code: str | None = Field(default=None, max_length=40, foreign_key="cells.code")
    agency_code: str | None = Field(default=None, max_length=40, foreign_key="agencies.code")
    is_active: bool = True
    created_at: datetime = Field(sa_type=UtcDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    # SHA-256 of the whole key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cell_code: str | None = Field(default=None, max_length=40, foreign_key="cells.code")
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
