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
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import errors
from app.auth.principal import Principal
from app.dbdriver import DriverStatement, Pooled
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


class StoredKey(NamedTuple):
    """What a key's row holds of the first request and its answer."""

    request_hash: str
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None


_STORED = DriverStatement(
    select(
        _KEYS.c.request_hash, _KEYS.c.status, _KEYS.c.response_status, _KEYS.c.response_body
    ).where(
        _KEYS.c.caller_kind == bindparam("kind"),
        _KEYS.c.caller_id == bindparam("id"),
        _KEYS.c.key == bindparam("key"),
    )
)


async def stored(conn: AsyncConnection | Pooled, caller: Principal, key: str) -> StoredKey | None:
    """The row stored under the caller's key (see `answer`), or None."""
    row = await _STORED.first(conn, {"kind": caller.kind, "id": caller.id, "key": key})
    return None if row is None else StoredKey(*row)


def answer(row: StoredKey, body_hash: str) -> StoredAnswer:
    """The answer stored in a key's row, for a request with this body."""
    if row.request_hash != body_hash:
        raise errors.IdempotencyMismatch(
            "this idempotency key was used with a different request body"
        )
    if row.status != DONE or row.response_status is None or row.response_body is None:
        raise errors.Conflict("a request with this idempotency key is still in progress")
    return StoredAnswer(status=row.response_status, body=dict(row.response_body))
