"""Every table, imported in one place for Alembic and the test-suite."""

from app.agencies.models import Agency
from app.audit.models import AuditEvent
from app.auth.models import ApiKey, User
from app.categories.models import Category
from app.db import metadata
from app.grid.models import Cell
from app.idempotency.models import IdempotencyKey
from app.incidents.models import Assignment, CaseCounter, Incident, IncidentEvent
from app.media.models import Photo
from app.outbox.models import OutboxEvent
from app.ratelimit.models import RateLimitCounter
from app.reports.models import Report
from app.webhooks.models import (
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "Agency",
    "ApiKey",
    "Assignment",
    "AuditEvent",
    "CaseCounter",
    "Category",
    "Cell",
    "IdempotencyKey",
    "Incident",
    "IncidentEvent",
    "OutboxEvent",
    "Photo",
    "RateLimitCounter",
    "Report",
    "User",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
