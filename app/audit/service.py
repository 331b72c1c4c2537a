"""Append administrative changes to the audit trail, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditEvent
from app.auth.principal import Principal


def record(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    at: datetime,
    **detail: Any,
) -> None:
    """Add one audit event; it commits or rolls back with the change it describes."""
    session.add(
        AuditEvent(
            at=at,
            actor_id=actor.id if actor else None,
            actor_kind=actor.kind if actor else "system",
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )
    )
