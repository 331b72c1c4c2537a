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

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Principal
from app.idempotency.models import DONE, IN_FLIGHT, IdempotencyKey

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


async def claim(
    session: AsyncSession, caller: Principal, key: str, body_hash: str, now: datetime
) -> int | StoredAnswer:
    """The new key row's id, or the answer stored under the key by an earlier request."""
    found = await _find(session, caller, key)
    if found is None:
        try:
            async with session.begin_nested():
                conn = await session.connection()
                result = await conn.execute(
                    insert(_KEYS)
                    .values(
                        caller_kind=caller.kind,
                        caller_id=caller.id,
                        key=key,
                        request_hash=body_hash,
                        status=IN_FLIGHT,
                        created_at=now,
                    )
                    .returning(_KEYS.c.id)
                )
                return int(result.scalar_one())
        except IntegrityError:
            # Another request claimed the key and has committed by now.
            found = await _find(session, caller, key)
            if found is None:
                raise errors.Conflict(
                    "a request with this idempotency key is in progress; retry"
                ) from None
    return _answer(found, body_hash)


async def _find(session: AsyncSession, caller: Principal, key: str) -> Any:
    conn = await session.connection()
    query = select(
        _KEYS.c.request_hash, _KEYS.c.status, _KEYS.c.response_status, _KEYS.c.response_body
    ).where(_KEYS.c.caller_kind == caller.kind, _KEYS.c.caller_id == caller.id, _KEYS.c.key == key)
    return (await conn.execute(query)).first()


def _answer(row: Any, body_hash: str) -> StoredAnswer:
    if row.request_hash != body_hash:
        raise errors.IdempotencyMismatch(
            "this idempotency key was used with a different request body"
        )
    if row.status != DONE or row.response_body is None:
        raise errors.Conflict("a request with this idempotency key is still in progress")
    return StoredAnswer(status=int(row.response_status), body=dict(row.response_body))


async def complete(session: AsyncSession, key_id: int, status: int, body: dict[str, Any]) -> None:
    """Store the answer under the key, in the transaction that made it."""
    conn = await session.connection()
    await conn.execute(
        update(_KEYS)
        .where(_KEYS.c.id == key_id)
        .values(status=DONE, response_status=status, response_body=body)
    )
