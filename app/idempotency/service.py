"""Idempotency keys: the first answer given under a key, claimed with what it protects.

A request with a key first looks for an answer stored under it (`stored`), and gives that
again. Otherwise it does its work and, in the same unit of work, claims the key with its
answer (`claim`): a concurrent duplicate waits on the key's unique index (PostgreSQL) or the
write lock (SQLite) until the first commits, finds the key taken (`KeyTaken`), writes
nothing, and answers the first answer. If the first fails, its key goes with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.dbtypes import UtcDateTime
from app.idempotency.models import DONE, IdempotencyKey

_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]


class KeyTaken(Exception):
    """The key was claimed meanwhile by a request that has committed: roll back and answer its
    answer."""


@dataclass(frozen=True)
class StoredKey:
    """What a key's row holds of the first request and its answer."""

    request_hash: str
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None


def request_hash(canonical: Any) -> str:
    """SHA-256 of the canonical JSON of a request body."""
    text_ = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text_.encode()).hexdigest()


_STORED = select(
    _KEYS.c.request_hash, _KEYS.c.status, _KEYS.c.response_status, _KEYS.c.response_body
).where(
    _KEYS.c.caller_kind == bindparam("kind"),
    _KEYS.c.caller_id == bindparam("id"),
    _KEYS.c.key == bindparam("key"),
)


async def stored(session: AsyncSession, caller: Principal, key: str) -> StoredKey | None:
    """The row stored under the caller's key (see `answer`), or None."""
    conn = await session.connection()
    found = await conn.execute(_STORED, {"kind": caller.kind, "id": caller.id, "key": key})
    row = found.mappings().first()
    return None if row is None else StoredKey(**row)


def answer(row: StoredKey, body_hash: str) -> dict[str, Any]:
    """The answer stored in a key's row, for a request with this body."""
    if row.request_hash != body_hash:
        raise errors.IdempotencyMismatch(
            "this idempotency key was used with a different request body"
        )
    if row.status != DONE or row.response_status is None or row.response_body is None:
        raise errors.Conflict("a request with this idempotency key is still in progress")
    return dict(row.response_body)


# Insert unless the caller's key is taken, one statement on both databases. A duplicate that
# has not committed yet makes this wait for it (the unique index), then insert nothing.
_CLAIM = text(
    "INSERT INTO idempotency_keys (caller_kind, caller_id, key, request_hash, status, "
    "response_status, response_body, created_at) "
    "VALUES (:caller_kind, :caller_id, :key, :request_hash, :status, :response_status, "
    ":response_body, :created_at) "
    "ON CONFLICT (caller_kind, caller_id, key) DO NOTHING RETURNING id"
).bindparams(bindparam("response_body", type_=JSON()), bindparam("created_at", type_=UtcDateTime()))


async def claim(
    session: AsyncSession,
    caller: Principal,
    key: str,
    body_hash: str,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Store the answer under the caller's key, in the unit of work of what it answers; else
    KeyTaken."""
    conn = await session.connection()
    row = {
        "caller_kind": caller.kind,
        "caller_id": caller.id,
        "key": key,
        "request_hash": body_hash,
        "status": DONE,
        "response_status": status,
        "response_body": body,
        "created_at": now,
    }
    if (await conn.execute(_CLAIM, row)).first() is None:
        raise KeyTaken(key)
