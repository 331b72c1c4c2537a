"""/healthz, /readyz, /metrics and the API documentation: what operators and integrators see."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.migrate import alembic_config, head_revision, upgrade
from tests.conftest import Harness, app_client
from tests.factories import WEST, load_grid, login_headers


def _revision_before_head() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    before = script.get_revision(head_revision()).down_revision
    if not isinstance(before, str):
        pytest.skip("there is only one migration: no database can be one behind")
    return before


async def test_healthz_answers_without_credentials(harness: Harness) -> None:
    r = await harness.client.get("/healthz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}


async def test_readyz_is_ok_on_a_migrated_database(harness: Harness) -> None:
    r = await harness.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "revision": head_revision()}


async def test_readyz_is_ok_on_a_database_of_its_own(
    fresh_database_url: str, tmp_path: Path
) -> None:
    async with app_client(fresh_database_url, tmp_path) as client:
        r = await client.get("/readyz")
    assert r.status_code == 200, r.text


async def test_readyz_says_no_before_any_migration(empty_database_url: str, tmp_path: Path) -> None:
    async with app_client(empty_database_url, tmp_path) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unavailable"
    assert r.json()["revision"] is None
    assert r.json()["head"] == head_revision()


async def test_readyz_says_no_while_a_migration_is_pending(
    empty_database_url: str, tmp_path: Path
) -> None:
    before = _revision_before_head()
    await asyncio.to_thread(upgrade, empty_database_url, before)  # Alembic runs its own loop

    async with app_client(empty_database_url, tmp_path) as client:
        r = await client.get("/readyz")

    assert r.status_code == 503, r.text
    assert r.json()["revision"] == before
    assert r.json()["failed"] == "migrations"


async def test_readyz_says_no_when_the_database_is_unreachable(
    backend: str, tmp_path: Path
) -> None:
    url = (
        "postgresql://nobody:nothing@127.0.0.1:1/none"
        if backend == "postgis"
        else f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    )
    async with app_client(url, tmp_path) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unavailable"
    assert r.json()["failed"] == "database"
    assert "nothing" not in r.text  # no connection details, let alone a password


async def test_metrics_count_requests_by_route_template(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "officer")
    await harness.client.get(f"/api/v1/cells/{WEST}", headers=headers)
    await harness.client.get("/api/v1/no-such-330106999")

    r = await harness.client.get("/metrics")

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE burnban_http_requests_total counter" in text
    assert re.search(
        r'burnban_http_requests_total\{method="GET",route="/api/v1/cells/\{code\}",status="200"\}'
        r" 1\.0",
        text,
    ), text
    assert "burnban_http_request_seconds_bucket" in text
    assert WEST not in text  # path parameters never become labels
    assert "no-such" not in text  # nor do unknown paths


async def test_metrics_need_no_credentials(harness: Harness) -> None:
    r = await harness.client.get("/metrics")
    assert r.status_code == 200


async def test_the_api_documentation_is_public(harness: Harness) -> None:
    docs = await harness.client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    schema = await harness.client.get("/openapi.json")
    assert schema.status_code == 200, schema.text
    assert schema.json()["info"]["title"] == "burnban"


async def test_every_operation_has_a_chosen_operation_id(harness: Harness) -> None:
    paths = (await harness.client.get("/openapi.json")).json()["paths"]
    ids = [
        (f"{method.upper()} {path}", operation.get("operationId"))
        for path, methods in paths.items()
        for method, operation in methods.items()
    ]
    assert ids
    generated = re.compile(r"_(get|post|put|patch|delete)$")
    for where, operation_id in ids:
        assert operation_id, f"{where} has no operationId"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", operation_id), where
        assert not generated.search(operation_id), f"{where}: {operation_id} is FastAPI's default"
    assert len({i for _, i in ids}) == len(ids), "operationIds must be unique"


async def test_the_documented_contract_paths_are_in_the_schema(harness: Harness) -> None:
    paths = (await harness.client.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/v1/auth/token", "post"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/agencies", "get"),
        ("/api/v1/agencies", "post"),
        ("/api/v1/categories", "get"),
        ("/api/v1/categories/{code}", "put"),
        ("/api/v1/apikeys", "post"),
        ("/api/v1/apikeys", "get"),
        ("/api/v1/apikeys/{key_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is missing"
