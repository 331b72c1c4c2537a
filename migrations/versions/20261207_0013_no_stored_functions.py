"""PostgreSQL: drop the report functions that earlier revisions installed.

Databases migrated before revisions 0010 and 0011 were emptied still hold
burnban_file_report (0011) or burnban_lock_nearby_open_incidents (0010); a report's statements
now live in app/. SQLite never had them.

Revision ID: 6c1f4b8e2a70
Revises: 3a9d7c1e5f28
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6c1f4b8e2a70"
down_revision: str | None = "3a9d7c1e5f28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS burnban_file_report(bigint[], jsonb)")
    op.execute(
        "DROP FUNCTION IF EXISTS burnban_lock_nearby_open_incidents(bigint[], varchar, float8, "
        "float8, float8, timestamptz, timestamptz)"
    )


def downgrade() -> None:
    pass  # nothing to restore: the functions are not used
