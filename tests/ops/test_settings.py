"""Settings: a weak secret key or data key is refused outside dev mode."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import DEV_DATA_KEY, DEV_SECRET_KEY, MIN_SECRET_KEY_LENGTH, Settings

DATA_KEY = secrets.token_urlsafe(48)


@pytest.fixture(autouse=True)
def _no_outside_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test passes counts: no BURNBAN_* variables, no .env file."""
    monkeypatch.chdir(tmp_path)
    for name in ("BURNBAN_SECRET_KEY", "BURNBAN_ENVIRONMENT", "BURNBAN_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "secret_key",
    [
        pytest.param(None, id="default"),
        pytest.param(DEV_SECRET_KEY, id="the-dev-key"),
        pytest.param("short", id="short"),
        pytest.param("x" * (MIN_SECRET_KEY_LENGTH - 1), id="one-too-short"),
        pytest.param("", id="empty"),
    ],
)
def test_production_refuses_a_weak_secret_key(secret_key: str | None) -> None:
    with pytest.raises(ValidationError, match="BURNBAN_SECRET_KEY"):
        if secret_key is None:
            Settings(environment="production")
        else:
            Settings(environment="production", secret_key=secret_key)


def test_production_accepts_a_long_random_secret_key() -> None:
    key = secrets.token_urlsafe(36)
    assert len(key) == 48
    settings = Settings(environment="production", secret_key=key, data_key=DATA_KEY)
    assert settings.secret_key == key


@pytest.mark.parametrize(
    "data_key",
    [
        pytest.param(None, id="missing"),
        pytest.param(DEV_DATA_KEY, id="the-dev-key"),
        pytest.param("x" * (MIN_SECRET_KEY_LENGTH - 1), id="one-too-short"),
    ],
)
def test_production_refuses_a_missing_or_weak_data_key(data_key: str | None) -> None:
    key = secrets.token_urlsafe(48)
    with pytest.raises(ValidationError, match="BURNBAN_DATA_KEY"):
        if data_key is None:
            Settings(environment="production", secret_key=key)
        else:
            Settings(environment="production", secret_key=key, data_key=data_key)


def test_dev_mode_accepts_the_default_data_key() -> None:
    assert Settings().data_key == DEV_DATA_KEY


def test_dev_mode_accepts_the_default_secret_key() -> None:
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.secret_key == DEV_SECRET_KEY


def test_the_environment_is_read_from_burnban_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNBAN_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="BURNBAN_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("BURNBAN_SECRET_KEY", secrets.token_urlsafe(48))
    with pytest.raises(ValidationError, match="BURNBAN_DATA_KEY"):
        Settings()
    monkeypatch.setenv("BURNBAN_DATA_KEY", DATA_KEY)
    assert Settings().environment == "production"


def test_an_env_file_is_read(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(48)
    (tmp_path / ".env").write_text(
        f"BURNBAN_ENVIRONMENT=production\nBURNBAN_SECRET_KEY={key}\nBURNBAN_DATA_KEY={DATA_KEY}\n"
    )
    assert Settings().secret_key == key
    assert Settings().data_key == DATA_KEY


@pytest.mark.parametrize(
    ("plain", "driver"),
    [
        ("sqlite:///./burnban.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/burnban", "postgresql+asyncpg"),
        ("postgres://u:p@db/burnban", "postgresql+asyncpg"),
    ],
)
def test_plain_database_urls_get_the_shipped_async_driver(plain: str, driver: str) -> None:
    assert Settings(database_url=plain).url.drivername == driver


def test_an_unsupported_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        _ = Settings(database_url="mysql://u:p@db/burnban").url
