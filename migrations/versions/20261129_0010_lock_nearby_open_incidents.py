"""Formerly installed, on PostgreSQL, the merge's area lock and its search in one PL/pgSQL function.

Migrations create schema and nothing else: a report's rules and statements live in app/
(app/reports/service.py and the stores of app/spatial/). This revision is kept, empty, so that
databases migrated through it keep their history; revision 0013 drops the function from
databases that have it.

Revision ID: 2b6f9e4c8d17
Revises: 5e8c2d7f1a39
Create Date: 2026-11-29 15:30:00
"""

from collections.abc import Sequence

revision: str = "2b6f9e4c8d17"
down_revision: str | None = "5e8c2d7f1a39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
