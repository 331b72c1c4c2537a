"""Webhook secrets sealed at rest: the column widened for a Fernet token, and every secret
stored in plain text until now sealed under BURNBAN_DATA_KEY (app/webhooks/sealing.py).

Run `burnban db upgrade` with the data key the service will use set in its environment.

Revision ID: 9b2e6d4a7c15
Revises: 6c1f4b8e2a70
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.config import Settings
from app.webhooks.sealing import SecretBox

revision: str = "9b2e6d4a7c15"
down_revision: str | None = "6c1f4b8e2a70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PLAIN_PREFIX = "whsec_"  # a Fernet token never starts so
_SUBSCRIPTIONS = sa.table("webhook_subscriptions", sa.column("id"), sa.column("secret"))


def _box() -> SecretBox:
    """The data key of the environment the migration runs in (`burnban db upgrade`)."""
    return SecretBox.of(Settings())


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(100), type_=sa.String(500), existing_nullable=False
        )
    conn = op.get_bind()
    plain = conn.execute(
        sa.select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.secret).where(
            _SUBSCRIPTIONS.c.secret.startswith(_PLAIN_PREFIX)
        )
    ).all()
    if not plain:
        return
    box = _box()
    for row in plain:
        conn.execute(
            sa.update(_SUBSCRIPTIONS)
            .where(_SUBSCRIPTIONS.c.id == row.id)
            .values(secret=box.seal(row.secret))
        )


def downgrade() -> None:
    conn = op.get_bind()
    sealed = conn.execute(
        sa.select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.secret).where(
            ~_SUBSCRIPTIONS.c.secret.startswith(_PLAIN_PREFIX)
        )
    ).all()
    if sealed:
        box = _box()
        for row in sealed:
            conn.execute(
                sa.update(_SUBSCRIPTIONS)
                .where(_SUBSCRIPTIONS.c.id == row.id)
                .values(secret=box.open(row.secret))
            )
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(500), type_=sa.String(100), existing_nullable=False
        )
