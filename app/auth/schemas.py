"""API shapes for tokens, users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Role = Literal["grid_worker", "officer", "supervisor", "admin"]
Scope = Literal["reports:write", "incidents:read", "grid:read", "webhooks:manage"]


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "li.wei",
                    "password": "a long passphrase",
                    "name": "李伟",
                    "role": "grid_worker",
                    "cell_code": "450305001001",
                }
            ]
        },
    )

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=8, max_length=256)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    cell_code: str | None = Field(default=None, min_length=1, max_length=40)
    agency_code: str | None = Field(default=None, min_length=1, max_length=40)


class UserOut(BaseModel):
    id: str
    username: str
    name: str
    role: Role
    cell_code: str | None
    agency_code: str | None
    active: bool = Field(
        default=True,
        validation_alias=AliasChoices("active", "is_active"),
        description="False: disabled",
    )


class UserPatch(BaseModel):
    """What an admin changes of a user; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"active": False},
                {"role": "officer", "cell_code": None, "agency_code": "450305001"},
                {"password": "a new long passphrase"},
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    cell_code: str | None = Field(default=None, min_length=1, max_length=40)
    agency_code: str | None = Field(default=None, min_length=1, max_length=40)
    password: str | None = Field(
        default=None, min_length=8, max_length=256, description="A new password (a reset)"
    )
    active: bool | None = Field(
        default=None, description="false disables the user: its tokens stop working at once"
    )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "区大气办大屏", "scopes": ["incidents:read"], "cell_code": "450305001"}
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    cell_code: str | None = Field(default=None, min_length=1, max_length=40)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[Scope]
    cell_code: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown once; only its hash is stored.")
