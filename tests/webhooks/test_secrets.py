"""Webhook secrets at rest: sealed under BURNBAN_DATA_KEY, rotated to a new key, sealed by the
migration where plain; a disabled subscription enabled again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import cli
from app.config import DEV_DATA_KEY, Settings
from app.db import Database, create_engine
from app.webhooks import service as webhook_service
from app.webhooks.models import WebhookSubscription
from app.webhooks.sealing import InvalidToken, SecretBox
from app.webhooks.worker import client
from tests.conftest import TEST_SECRET, Harness
from tests.factories import count_where
from tests.webhooks.receiver import receiving, verify
from tests.webhooks.support import OPTIONS, Reporter, advance, drain, subscribe

NEW_KEY = "a-new-data-key-of-the-operator-0123456789"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with client() as http_client:
        yield http_client


async def _stored_secret(h: Harness, hook_id: str) -> str:
    async with h.db.read() as session:
        row = await session.get(WebhookSubscription, hook_id)
        assert row is not None
        return row.secret


async def test_a_secret_is_stored_sealed_and_events_are_signed_with_it(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, _ = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        await drain(h, http)
    stored = await _stored_secret(h, hook["id"])
    assert hook["secret"].startswith("whsec_")
    assert hook["secret"] not in stored and not stored.startswith("whsec_")
    assert SecretBox.of(h.settings).open(stored) == hook["secret"]
    (sent,) = receiver.received
    verify(hook["secret"], sent.headers, sent.body, h.clock.now().timestamp())


async def test_rotating_the_data_key_keeps_every_secret(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    old = SecretBox.of(h.settings)
    with receiving() as receiver:
        hook, _ = await subscribe(h, receiver.url(), ["incident.created"])
        rotating = SecretBox(NEW_KEY, [h.settings.data_key])
        async with h.db.write() as session:
            assert await webhook_service.reseal_secrets(session, rotating) == 1
        stored = await _stored_secret(h, hook["id"])
        with pytest.raises(InvalidToken):
            old.open(stored)
        assert SecretBox(NEW_KEY).open(stored) == hook["secret"]

        await Reporter(h).report()
        await drain(h, http, replace(OPTIONS, box=SecretBox(NEW_KEY)))  # the old key dropped
    (sent,) = receiver.received
    verify(hook["secret"], sent.headers, sent.body, h.clock.now().timestamp())


async def test_a_worker_without_the_key_sends_nothing_and_says_why(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        await Reporter(h).report()
        await drain(h, http, replace(OPTIONS, box=SecretBox(NEW_KEY)))
    assert receiver.received == []
    answer = await h.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=key)
    (delivery,) = answer.json()["items"]
    assert delivery["status"] == "pending" and "data key" in delivery["last_error"]


async def test_a_disabled_subscription_can_be_enabled_again(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    h = harness
    reporter = Reporter(h)
    with receiving() as receiver:
        hook, key = await subscribe(h, receiver.url(), ["incident.created"])
        receiver.answer(410)
        await reporter.report(120.02, 30.02)
        await drain(h, http)
        path = f"/api/v1/webhooks/{hook['id']}"
        assert (await h.client.get(path, headers=key)).json()["disabled_at"] is not None

        enabled = await h.client.post(f"{path}/enable", headers=key)
        await reporter.report(120.07, 30.07)
        advance(h, minutes=1)
        await drain(h, http)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_at"] is None and enabled.json()["disabled_reason"] is None
    assert len(receiver.received) == 2  # the first answered 410; the second, after enabling
    other = await h.client.post(f"/api/v1/webhooks/{'0' * 32}/enable", headers=key)
    assert other.status_code == 404


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BURNBAN_DATABASE_URL", url)
    monkeypatch.setenv("BURNBAN_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("BURNBAN_DATA_KEY", raising=False)
    monkeypatch.delenv("BURNBAN_DATA_KEY_PREVIOUS", raising=False)


_PLAIN = "whsec_" + "QUJD" * 8


async def _sql(url: str, *statements: str) -> list[str]:
    settings = Settings(database_url=url, secret_key=TEST_SECRET)
    db = Database(create_engine(settings.url, settings))
    try:
        async with db.write() as session:
            conn = await session.connection()
            for statement in statements:
                await conn.execute(text(statement))
            found = await conn.execute(text("SELECT secret FROM webhook_subscriptions"))
            return [row.secret for row in found]
    finally:
        await db.dispose()


def test_the_migration_seals_plain_secrets_and_the_command_rotates_them(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _env(monkeypatch, tmp_path, empty_database_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--revision", "6c1f4b8e2a70"]).exit_code == 0
    asyncio.run(
        _sql(
            empty_database_url,
            "INSERT INTO api_keys (id, name, key_hash, prefix, scopes, created_at) "
            "VALUES ('k1', 'k', 'h', 'bb_', '[]', CURRENT_TIMESTAMP)",
            "INSERT INTO webhook_subscriptions (id, api_key_id, url, events, secret, created_at) "
            f"VALUES ('s1', 'k1', 'https://example.org/h', '[]', '{_PLAIN}', CURRENT_TIMESTAMP)",
        )
    )

    upgraded = runner.invoke(cli, ["db", "upgrade"])
    (sealed,) = asyncio.run(_sql(empty_database_url))
    monkeypatch.setenv("BURNBAN_DATA_KEY", NEW_KEY)
    refused = runner.invoke(cli, ["db", "rotate-data-key"])  # the old key not given
    monkeypatch.setenv("BURNBAN_DATA_KEY_PREVIOUS", DEV_DATA_KEY)
    rotated = runner.invoke(cli, ["db", "rotate-data-key"])
    (resealed,) = asyncio.run(_sql(empty_database_url))

    assert upgraded.exit_code == 0, upgraded.output
    assert not sealed.startswith("whsec_")
    assert SecretBox(DEV_DATA_KEY).open(sealed) == _PLAIN
    assert refused.exit_code == 1 and "nothing was changed" in refused.output
    assert rotated.exit_code == 0, rotated.output
    assert "1 webhook secrets sealed" in rotated.output
    assert SecretBox(NEW_KEY).open(resealed) == _PLAIN


async def test_secrets_are_never_shown_again(harness: Harness) -> None:
    h = harness
    hook, key = await subscribe(h, "http://127.0.0.1:9/h", ["incident.created"])
    shown = await h.client.get(f"/api/v1/webhooks/{hook['id']}", headers=key)
    assert "secret" not in shown.json()
    assert await count_where(h, WebhookSubscription) == 1
