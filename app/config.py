"""Settings read from BURNBAN_* environment variables or a .env file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEV_SECRET_KEY = "dev-secret-key-change-me"
DEV_DATA_KEY = "dev-data-key-change-me"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Everything the service reads from its environment; passed in, never global."""

    model_config = SettingsConfigDict(env_prefix="BURNBAN_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./burnban.db"
    secret_key: str = DEV_SECRET_KEY
    # Seals webhook secrets at rest (app/webhooks/sealing.py); older keys, comma-separated,
    # still open what they sealed until `burnban db rotate-data-key` has run.
    data_key: str = DEV_DATA_KEY
    data_key_previous: str = ""
    environment: Literal["dev", "production"] = "dev"
    media_dir: Path = Path("./media")
    access_token_minutes: int = Field(default=12 * 60, ge=1, le=30 * 24 * 60)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    rate_limit_writes: int = Field(default=120, ge=1)
    webhook_allow_private: bool = False
    # Open311's GET requests resources without an API key: a public view, positions rounded to
    # ~100 m, no free text. Off: reading them needs a key with incidents:read.
    open311_public: bool = False
    # Deliver webhooks inside the API process; None means "when the database is SQLite"
    # (the two-command set-up). With PostgreSQL run `burnban worker` processes instead.
    run_worker_in_process: bool | None = None
    # Connections per process, kept open and never more: this many for units of work, and on
    # PostgreSQL half of it (at least 2) for counters (app/db.py, Database.counters); a webhook
    # worker, one more to LISTEN.
    db_pool_size: int = Field(default=10, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # Retention (app/retention/): idempotency keys as long as a report they answered could
    # still be accepted (30 days old at most), so a retry after that is refused as too old,
    # never filed twice; finished webhook deliveries and their attempts; rate-limit windows.
    # No statement of a request runs longer (it is stopped and the request answers 503); an
    # export's statements may run longer (app/db.py). Commands and workers have no ceiling.
    statement_timeout_seconds: float = Field(default=5.0, gt=0)
    export_statement_timeout_seconds: float = Field(default=30.0, gt=0)
    retention_idempotency_days: int = Field(default=30, ge=1)
    retention_webhook_days: int = Field(default=90, ge=1)
    retention_counters_days: int = Field(default=1, ge=1)
    # FastAPI's own OpenTelemetry traces, metrics and logs, to the providers configured for the
    # process (`opentelemetry-instrument`, say). Off by default: FastAPI looks for configured
    # providers on every request, 2 % of a report's instructions. /metrics is always there.
    opentelemetry: bool = False

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        if self.environment != "dev" and (
            self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                "BURNBAN_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters outside dev mode "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_data_key(self) -> Settings:
        if self.environment != "dev" and (
            self.data_key == DEV_DATA_KEY or len(self.data_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                "BURNBAN_DATA_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters outside dev mode: it seals webhook "
                "secrets (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def previous_data_keys(self) -> list[str]:
        return [key.strip() for key in self.data_key_previous.split(",") if key.strip()]

    @cached_property
    def url(self) -> URL:
        """The database URL with the driver this service uses for its dialect."""
        return async_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def worker_in_process(self) -> bool:
        if self.run_worker_in_process is not None:
            return self.run_worker_in_process
        return self.is_sqlite


def async_url(plain: str) -> URL:
    """Map a plain sqlite:// or postgresql:// URL to the async driver we ship."""
    url = make_url(plain)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}: use sqlite or postgresql"
    )
