"""The request dependency that counts writes per API key or user before the work starts."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from app.auth import security
from app.config import Settings
from app.deps import ClockDep, DatabaseDep, SettingsDep
from app.ratelimit import service

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def caller_of(request: Request, settings: Settings, now: datetime) -> str | None:
    """Who is writing, from the credentials alone (no database): an API key by its hash, a
    user by the token's subject. None without usable credentials (auth refuses those)."""
    api_key = request.headers.get("x-api-key")
    if api_key:
        return service.api_key_caller(api_key)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        subject = security.token_subject(token.strip(), settings.secret_key, now)
        return f"user:{subject}" if subject else None
    return None


async def limit_writes(
    request: Request, db: DatabaseDep, settings: SettingsDep, clock: ClockDep
) -> None:
    """BURNBAN_RATE_LIMIT_WRITES writes a minute per API key or user; 429 beyond.

    It runs before the route's own unit of work begins (route-level dependencies resolve
    first), so on SQLite its short write never waits on the request's own transaction.
    """
    if request.method not in WRITE_METHODS:
        return
    now = clock.now()
    caller = caller_of(request, settings, now)
    if caller is not None:
        await service.limit_writes(db, caller, settings.rate_limit_writes, now)
