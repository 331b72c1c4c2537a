"""Formerly installed, on PostgreSQL, a report's every write in one PL/pgSQL function.

Migrations create schema and nothing else: a report's rules and statements live in app/
(app/reports/service.py and the stores of app/spatial/). This revision is kept, empty, so that
databases migrated through it keep their history; revision 0013 drops the function from
databases that have it.

Revision ID: 8f2c4a6e1b05
Revises: 2b6f9e4c8d17
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

revision: str = "8f2c4a6e1b05"
down_revision: str | None = "2b6f9e4c8d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
