"""PostgreSQL tells listening webhook workers when outbox events commit.

A worker with nothing to do polled the outbox every second, so a live webhook left up to a
second after its event. A statement-level trigger on outbox_events NOTIFYs the channel
`burnban_outbox`, which PostgreSQL delivers to listeners when the transaction commits (and
never if it rolls back), once per transaction whatever the number of events. Workers LISTEN and
keep polling as a fallback. SQLite has no notifications: its workers poll.

Revision ID: 5e8c2d7f1a39
Revises: 9a41c6e2d8b3
Create Date: 2026-11-29 15:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e8c2d7f1a39"
down_revision: str | None = "9a41c6e2d8b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION burnban_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('burnban_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION burnban_outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION burnban_outbox_notify()")
