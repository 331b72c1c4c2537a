"""While the database cannot serve, requests answer 503 `unavailable` with Retry-After (clients
retry on it), never 500; /readyz says which check failed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.auth import security
from tests.conftest import app_client
from tests.factories import problem_type, report_body


@pytest.fixture
def unreachable_url(backend: str, tmp_path: Path) -> str:
    """A database that cannot be reached: no server on the port; no directory for the file."""
    if backend == "postgis":
        return "postgresql://nobody:nothing@127.0.0.1:1/none"
    return f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == problem_type("unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert "nothing" not in r.text and "127.0.0.1" not in r.text  # no connection details


async def test_while_the_database_is_unreachable_requests_answer_503_with_retry_after(
    unreachable_url: str, tmp_path: Path
) -> None:
    key = {"X-API-Key": security.API_KEY_PREFIX + "a-key-that-is-looked-up"}
    async with app_client(unreachable_url, tmp_path) as client:
        report = await client.post("/api/v1/reports", json=report_body(), headers=key)
        listing = await client.get("/api/v1/incidents", headers=key)
        login = await client.post("/api/v1/auth/token", data={"username": "a", "password": "b"})
    for answer in (report, listing, login):
        _assert_unavailable(answer)
    assert "retry" in report.json()["detail"]


async def test_readyz_says_the_database_check_failed(unreachable_url: str, tmp_path: Path) -> None:
    async with app_client(unreachable_url, tmp_path) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unavailable"
    assert r.json()["failed"] == "database"
    assert r.json()["database"] == "unreachable"
    assert int(r.headers["Retry-After"]) >= 1


async def test_the_503_is_in_the_api_description(unreachable_url: str, tmp_path: Path) -> None:
    async with app_client(unreachable_url, tmp_path) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    unavailable = paths["/api/v1/reports"]["post"]["responses"]["503"]
    assert "application/problem+json" in unavailable["content"]
    assert "503" in paths["/api/v1/incidents"]["get"]["responses"]
