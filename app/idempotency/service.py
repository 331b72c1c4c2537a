"""Claiming an idempotency key inside the unit of work that creates the resource.

The key row is inserted in the same transaction as what it protects, so a concurrent
duplicate blocks on the unique index (PostgreSQL) or the write lock (SQLite) until the first
commits, and then answers the first answer; if the first fails, its key goes with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.dbwrites import Write
from app.idempotency.models import DONE, IN_FLIGHT, IdempotencyKey

_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]
_CLAIM_COLUMNS = ("caller_kind", "caller_id", "key", "request_hash", "status", "created_at")


_CLAIM = {
    dialect: insert(_KEYS)
    .values({c: bindparam(c, type_=_KEYS.c[c].type) for c in _CLAIM_COLUMNS})
    .on_conflict_do_nothing(index_elements=["caller_kind", "caller_id", "key"])
    .returning(_KEYS.c.id)
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given under a key, to be given again."""

    status: int
    body: dict[str, Any]


def request_hash(canonical: Any) -> str:
    """SHA-256 of the canonical JSON of a request body."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def claim(
    session: AsyncSession, caller: Principal, key: str, body_hash: str, now: datetime
) -> int | StoredAnswer:
    """The new key row's id, or the answer stored under the key by an earlier request.

    One statement when the key is new. A concurrent request holding the same key makes
    PostgreSQL's INSERT wait until it ends; then the key is taken (its answer is read) or free.
    """
    conn = await session.connection()
    claimed = await conn.execute(
        _CLAIM[conn.dialect.name],
        {
            "caller_kind": caller.kind,
            "caller_id": caller.id,
            "key": key,
            "request_hash": body_hash,
            "status": IN_FLIGHT,
            "created_at": now,
        },
    )
    key_id = claimed.scalar()
    if key_id is not None:
        return int(key_id)
    found = await stored(session, caller, key)
    if found is None:  # taken by a request that rolled back since: let the client retry
        raise errors.Conflict("a request with this idempotency key is in progress; retry")
    return answer(found, body_hash)


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


_COMPLETE = (
    update(_KEYS)
    .where(_KEYS.c.id == bindparam("key_id"))
    .values(
        status=DONE,
        response_status=bindparam("key_status"),
        response_body=bindparam("key_body", type_=_KEYS.c.response_body.type),
    )
)


def completing(key_id: int, status: int, body: dict[str, Any]) -> Write:
    """The write storing the answer under the key, in the transaction that made it."""
    return _COMPLETE, {"key_id": key_id, "key_status": status, "key_body": body}
