"""Readiness: may this process be sent traffic? Each check in order; the first failing says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import text

from app import dbfaults
from app.db import Database
from app.migrate import current_revision

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Readiness:
    """The schema revision seen, and the first check that failed (None: ready)."""

    revision: str | None
    head: str
    failed: str | None = None  # "database" | "migrations"
    reason: str | None = None
    detail: str | None = None

    def body(self) -> dict[str, Any]:
        """/readyz's answer: `{"status": "ok", "revision"}`, or which check failed and why."""
        if self.failed is None:
            return {"status": "ok", "revision": self.revision}
        body: dict[str, Any] = {
            "status": "unavailable",
            "failed": self.failed,
            "database": self.reason,
            "detail": self.detail,
        }
        if self.failed == "migrations":
            body.update(revision=self.revision, head=self.head)
        return body


async def check(db: Database, head: str) -> Readiness:
    """database: it answers a query; migrations: its schema is at `head`."""
    try:
        async with db.read() as session:
            conn = await session.connection()
            await conn.execute(text("SELECT 1"))
            revision = await conn.run_sync(current_revision)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database means not ready
        fault = dbfaults.unavailable(exc)
        log.warning("not_ready", check="database", error_type=type(exc).__name__)
        detail = fault.detail if fault is not None else "the database answered with an error"
        return Readiness(None, head, "database", "unreachable", detail)
    if revision != head:
        detail = f"the schema is at {revision or 'no revision'}, not {head}: burnban db upgrade"
        return Readiness(revision, head, "migrations", "migrations behind", detail)
    return Readiness(revision, head)
