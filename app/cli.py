"""The `burnban` command line: serve, migrate, import grids, manage users and keys, demo."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate, UserCreate
from app.clock import SystemClock
from app.config import DEV_SECRET_KEY, Settings
from app.db import Database, create_engine
from app.spatial.store import SpatialStore, store_for

cli = typer.Typer(help="burnban: grid-based burning-ban supervision.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
grid_cli = typer.Typer(help="The administrative grid.", no_args_is_help=True)
users_cli = typer.Typer(help="Users.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys for third-party systems.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(grid_cli, name="grid")
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="apikeys")

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


def _in_unit_of_work(work: Callable[[AsyncSession, SpatialStore], Awaitable[T]]) -> T:
    """Run `work` in one committed unit of work; refusals print and exit 1."""
    settings = _settings()

    async def run() -> T:
        db = Database(create_engine(settings.url, settings))
        try:
            async with db.write() as session:
                return await work(session, store_for(db.dialect))
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except errors.BurnbanError as exc:
        typer.secho(f"refused: {exc.detail}", fg="red", err=True)
        for item in exc.extra.get("errors", [])[:50]:
            typer.echo(f"  {json.dumps(item, ensure_ascii=False)}", err=True)
        raise typer.Exit(1) from exc


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP service (it never loads data by itself)."""
    import uvicorn

    backend = _settings().url.get_backend_name()
    typer.echo(f"burnban on http://{host}:{port} (docs at /docs), database: {backend}")
    uvicorn.run(
        "app.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


@cli.command()
def worker(
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Deliveries per round.")] = 50,
) -> None:
    """Deliver webhooks and purge old rows until stopped (run as many as you like; they share
    the work)."""
    import signal

    from app.retention import service as retention
    from app.webhooks import worker as webhook_worker
    from app.webhooks.sealing import SecretBox

    settings = _settings()
    options = webhook_worker.WorkerOptions(
        allow_private=settings.webhook_allow_private, batch=batch, box=SecretBox.of(settings)
    )

    async def run() -> None:
        db = Database(create_engine(settings.url, settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        kept = retention.Retention.of(settings)
        try:
            await asyncio.gather(
                webhook_worker.run(db, SystemClock(), options, stop),
                retention.run(db, SystemClock(), kept, stop),
            )
        finally:
            await db.dispose()

    typer.echo(
        "burnban worker delivering webhooks and purging old rows, "
        f"database: {settings.url.get_backend_name()}"
    )
    asyncio.run(run())


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the latest schema."""
    from app.migrate import upgrade

    upgrade(_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@db_cli.command("backup")
def db_backup(
    dest: Annotated[Path, typer.Argument(file_okay=False, help="A new directory for the copy.")],
) -> None:
    """SQLite: copy the database (consistently, while serving) and the photos into DEST.
    PostgreSQL: check the server's version and print the pg_dump command to run."""
    from app import backup

    settings = _settings()
    if settings.is_sqlite:
        copied = _refusing(
            lambda: backup.backup_sqlite(backup.sqlite_file(settings.url), settings.media_dir, dest)
        )
        typer.echo(
            f"backed up {copied.reports} reports into {copied.database} (integrity ok) and "
            f"{copied.photos} new photos into {dest / backup.MEDIA_DIR}"
        )
        return
    plan = backup.pg_dump_plan(settings.url, asyncio.run(_server_version(settings)), dest)
    typer.echo(f"PostgreSQL {plan.server_major} server. Run (password in PGPASSWORD or ~/.pgpass):")
    typer.echo(f"  {plan.command}")
    typer.echo(f"  rsync -a {settings.media_dir}/ {dest / backup.MEDIA_DIR}/   # then the photos")
    if plan.pg_dump_major is None:
        typer.secho("pg_dump is not installed here (postgresql-client)", fg="red", err=True)
        raise typer.Exit(1)
    if not plan.ready:
        typer.secho(
            f"pg_dump {plan.pg_dump_major} is older than the server ({plan.server_major}): "
            "install a client at least as new",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"pg_dump {plan.pg_dump_major} here can dump it.")


@db_cli.command("restore")
def db_restore(
    source: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A backup.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an existing database (service stopped).")
    ] = False,
) -> None:
    """SQLite: put a backup made by `db backup` in place (stop the service first)."""
    from app import backup

    settings = _settings()
    if not settings.is_sqlite:
        typer.secho(
            "on PostgreSQL restore with pg_restore into a new database, then burnban db upgrade",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    copied = _refusing(
        lambda: backup.restore_sqlite(
            source, backup.sqlite_file(settings.url), settings.media_dir, replace
        )
    )
    typer.echo(
        f"restored {copied.reports} reports into {copied.database} (integrity ok) and "
        f"{copied.photos} photos; now: burnban db upgrade, then serve"
    )


def _refusing(work: Callable[[], T]) -> T:
    try:
        return work()
    except errors.BurnbanError as exc:
        typer.secho(f"refused: {exc.detail}", fg="red", err=True)
        raise typer.Exit(1) from exc


async def _server_version(settings: Settings) -> int:
    from sqlalchemy import text

    db = Database(create_engine(settings.url, settings))
    try:
        async with db.read() as session:
            shown = await (await session.connection()).execute(text("SHOW server_version_num"))
            return int(shown.scalar_one())
    finally:
        await db.dispose()


@db_cli.command("rotate-data-key")
def db_rotate_data_key() -> None:
    """Seal every webhook secret again under BURNBAN_DATA_KEY (the old key in
    BURNBAN_DATA_KEY_PREVIOUS until this has run)."""
    from app.webhooks import service as webhook_service
    from app.webhooks.sealing import InvalidToken, SecretBox

    box = SecretBox.of(_settings())
    try:
        count = _in_unit_of_work(
            lambda session, _store: webhook_service.reseal_secrets(session, box)
        )
    except InvalidToken as exc:
        typer.secho(
            "refused: a secret is sealed under a key that is neither BURNBAN_DATA_KEY nor in "
            "BURNBAN_DATA_KEY_PREVIOUS; nothing was changed",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc
    typer.echo(f"{count} webhook secrets sealed under the current data key")


@grid_cli.command("import")
def grid_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
) -> None:
    """Import a GeoJSON FeatureCollection of cells (all or nothing, upsert by code)."""
    from app.grid import service as grid_service

    started = time.perf_counter()

    def progress(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    progress(f"reading {file}")
    try:
        collection = json.loads(file.read_bytes())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        typer.secho(f"refused: {file} is not a JSON file: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    result = _in_unit_of_work(
        lambda session, store: grid_service.import_grid(
            session, store, collection, None, SystemClock().now(), dry_run, progress
        )
    )
    verb = "would import" if dry_run else "imported"
    typer.echo(
        f"{verb}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged in {time.perf_counter() - started:.1f}s"
    )
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


@users_cli.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="grid_worker, officer, supervisor or admin")],
    cell: Annotated[str | None, typer.Option(help="Cell code (grid worker, supervisor).")] = None,
    agency: Annotated[str | None, typer.Option(help="Agency code (officer).")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password: Annotated[str | None, typer.Option(help="Prompted for when not given.")] = None,
) -> None:
    """Create a user."""
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate(
            username=username,
            password=password,
            name=name or username,
            role=role,
            cell_code=cell,
            agency_code=agency,
        )
    except ValueError as exc:
        typer.secho(f"refused: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    user = _in_unit_of_work(
        lambda session, _store: auth_service.create_user(session, data, None, SystemClock().now())
    )
    typer.echo(f"created {user.role} {user.username} ({user.id})")


@keys_cli.command("create")
def apikeys_create(
    name: str,
    scope: Annotated[
        list[str], typer.Option(help="reports:write, incidents:read, grid:read, webhooks:manage")
    ],
    cell: Annotated[str | None, typer.Option(help="Limit the key to this cell.")] = None,
) -> None:
    """Create an API key and print it (it is shown only this once)."""
    try:
        data = ApiKeyCreate(name=name, scopes=scope, cell_code=cell)
    except ValueError as exc:
        typer.secho(f"refused: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    row, key = _in_unit_of_work(
        lambda session, _store: auth_service.create_api_key(
            session, data, None, SystemClock().now()
        )
    )
    typer.echo(f"API key {row.id} ({', '.join(row.scopes)}): {key}")


@cli.command()
def demo(
    env_file: Annotated[Path, typer.Option(help="Where a generated secret key is saved.")] = Path(
        ".env"
    ),
    reset: Annotated[
        bool, typer.Option("--reset", help="Give every demo user a new password (and enable it).")
    ] = False,
) -> None:
    """Load the demo grid (synthetic 七星区), bureaus and one user per role; print the logins.
    Demo users that exist are kept with their passwords unless --reset."""
    from app.demo.service import load_demo
    from app.migrate import upgrade

    _ensure_secret_key(env_file)
    settings = _settings()
    upgrade(settings.database_url)
    result, logins = _in_unit_of_work(
        lambda session, store: load_demo(session, store, SystemClock().now(), reset)
    )
    typer.echo(
        f"demo grid: {result.created} cells created, {result.updated} updated, "
        f"{result.unchanged} unchanged (boundaries are synthetic)"
    )
    typer.echo("logins (POST /api/v1/auth/token, or the Authorize button at /docs):")
    for login in logins:
        password = login.password or "(unchanged)"
        typer.echo(f"  {login.username:<11} {password:<14} {login.role:<12} {login.bound_to}")
    if any(login.password is None for login in logins):
        typer.echo("(unchanged: the password given before; `burnban demo --reset` for new ones)")


def _ensure_secret_key(env_file: Path) -> None:
    """Give the demo a generated secret key, kept in .env so `serve` uses the same one."""
    settings = _settings()
    if settings.secret_key != DEV_SECRET_KEY:
        return
    key = secrets.token_urlsafe(48)
    with env_file.open("a", encoding="utf-8") as out:
        out.write(f"BURNBAN_SECRET_KEY={key}\n")
    typer.echo(f"generated BURNBAN_SECRET_KEY into {env_file}", err=True)


def main() -> None:
    cli(prog_name="burnban")


if __name__ == "__main__":
    main()
