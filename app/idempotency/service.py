"""Idempotency keys: the first answer given under a key, claimed with what it protects.

The key row is inserted with its answer in the same transaction as what it protects (see
`SpatialStore.file_report`), so a concurrent duplicate blocks on the unique index
(PostgreSQL) or the write lock (SQLite) until the first commits, and then answers the first
answer; if the first fails, its key goes with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.idempotency.models import DONE, IdempotencyKey

_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given under a key, to be given again."""

    status: int
    body: dict[str, Any]


def request_hash(canonical: Any) -> str:
    """SHA-256 of the canonical JSON of a request body."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def claim_row(
    caller: Principal, key: str, body_hash: str, status: int, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The key's row, holding the answer to give again."""
    return {
        "caller_kind": caller.kind,
        "caller_id": caller.id,
        "key": key,
        "request_hash": body_hash,
        "status": DONE,
        "response_status": status,
        "response_body": body,
        "created_at": now,
    }


async def stored(session: AsyncSession, caller: Principal, key: str) -> Any:
    """The row stored under the caller's key (see `answer`), or None."""
    conn = await session.connection()
    query = select(
        _KEYS.c.request_hash, _KEYS.c.status, _KEYS.c.response_status, _KEYS.c.response_body
    ).where(_KEYS.c.caller_kind == caller.kind, _KEYS.c.caller_id == caller.id, _KEYS.c.key == key)
    return (await conn.execute(query)).first()


def answer(row: Any, body_hash: str) -> StoredAnswer:
    """The answer stored in a key's row, for a request with this body."""
    if row.request_hash != body_hash:
        raise errors.IdempotencyMismatch(
            "this idempotency key was used with a different request body"
        )
    if row.status != DONE or row.response_body is None:
        raise errors.Conflict("a request with this idempotency key is still in progress")
    return StoredAnswer(status=int(row.response_status), body=dict(row.response_body))
