"""Every table, imported in one place for Alembic and the test-suite."""

from app.agencies.models import Agency
from app.audit.models import AuditEvent
from app.auth.models import ApiKey, User
from app.categories.models import Category
from app.db import metadata
from app.grid.models import Cell

__all__ = ["Agency", "ApiKey", "AuditEvent", "Category", "Cell", "User", "metadata"]
