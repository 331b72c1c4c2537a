"""Running the Alembic migrations and asking whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

import migrations

SCRIPT_LOCATION = Path(migrations.__file__).parent


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if database_url is not None:
        from app.config import async_url

        config.attributes["url"] = async_url(database_url)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` (a plain URL) to `revision`."""
    make_url(database_url)  # refuse a malformed URL before Alembic does something odd with it
    command.upgrade(alembic_config(database_url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate through an open connection (tests run this inside run_sync)."""
    config = alembic_config()
    config.attributes["sync_connection"] = connection
    command.upgrade(config, revision)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
