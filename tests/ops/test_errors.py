"""Every error is RFC 9457 problem+json; every response carries X-Request-ID."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from app.agencies.models import Agency
from app.deps import SessionDep
from tests.conftest import Harness
from tests.factories import count_where, login_headers, problem_type

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
LEAK = "secret-sql-detail"


def _assert_problem(r: httpx.Response, status: int, slug: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = r.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["instance"] == r.request.url.path
    if slug is not None:
        assert body["type"] == problem_type(slug)
    return body


@pytest.fixture
def failing_routes(harness: Harness) -> Iterator[None]:
    """Routes that fail in ways no real route should, added to this test's app only."""
    app: FastAPI = harness.app

    async def boom() -> None:
        raise RuntimeError(f"{LEAK}: SELECT password_hash FROM users")

    async def write_then_boom(session: SessionDep) -> None:
        session.add(
            Agency(code="half-done", name="半途", kind="bureau", created_at=harness.clock.now())
        )
        await session.flush()
        raise RuntimeError(LEAK)

    app.add_api_route("/test/boom", boom, methods=["GET"])
    app.add_api_route("/test/write-then-boom", write_then_boom, methods=["POST"])
    yield


async def test_an_unknown_route_is_a_not_found_problem(harness: Harness) -> None:
    r = await harness.client.get("/api/v1/no-such-thing")
    body = _assert_problem(r, 404, "not-found")
    assert "/api/v1/no-such-thing" in str(body["detail"])


async def test_an_unknown_route_is_404_even_without_credentials(harness: Harness) -> None:
    for path in ("/api/v1/secrets", "/api/v2/users", "/"):
        _assert_problem(await harness.client.get(path), 404, "not-found")


async def test_a_wrong_method_is_a_405_problem(harness: Harness) -> None:
    r = await harness.client.delete("/api/v1/categories")
    _assert_problem(r, 405)
    assert "GET" in r.headers["allow"]


async def test_malformed_json_is_a_validation_problem_with_errors(harness: Harness) -> None:
    headers = {**await login_headers(harness, "admin"), "Content-Type": "application/json"}

    r = await harness.client.post("/api/v1/users", content=b'{"username": "x",', headers=headers)

    body = _assert_problem(r, 422, "validation")
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert set(error) == {"loc", "msg"}
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
    assert errors[0]["loc"][0] == "body"


async def test_a_body_that_is_not_an_object_is_a_validation_problem(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    r = await harness.client.post("/api/v1/users", json=["not", "an", "object"], headers=headers)
    body = _assert_problem(r, 422, "validation")
    assert body["errors"]


@pytest.mark.usefixtures("failing_routes")
async def test_an_unexpected_exception_is_a_500_without_details(harness: Harness) -> None:
    r = await harness.client.get("/test/boom", headers={"X-Request-ID": "support-ticket-42"})

    body = _assert_problem(r, 500)
    assert body["request_id"] == "support-ticket-42"
    assert r.headers["x-request-id"] == "support-ticket-42"
    for leak in (LEAK, "RuntimeError", "Traceback", "password_hash", 'File "', "app/"):
        assert leak not in r.text


@pytest.mark.usefixtures("failing_routes")
async def test_a_500_gets_a_request_id_even_when_none_was_sent(harness: Harness) -> None:
    r = await harness.client.get("/test/boom")
    body = _assert_problem(r, 500)
    assert GENERATED_ID.match(str(body["request_id"]))
    assert r.headers["x-request-id"] == body["request_id"]


@pytest.mark.usefixtures("failing_routes")
async def test_a_write_that_fails_unexpectedly_stores_nothing(harness: Harness) -> None:
    r = await harness.client.post("/test/write-then-boom")
    _assert_problem(r, 500)
    assert await count_where(harness, Agency, Agency.code == "half-done") == 0


async def _responses(h: Harness, headers: dict[str, str]) -> list[httpx.Response]:
    """One response of each kind: success, 401, 404, 405, 422 and 500."""
    admin = await login_headers(h, "admin")
    return [
        await h.client.get("/healthz", headers=headers),
        await h.client.get("/api/v1/users/me", headers=headers),
        await h.client.get("/api/v1/nowhere", headers=headers),
        await h.client.put("/healthz", headers=headers),
        await h.client.post("/api/v1/users", json={}, headers={**admin, **headers}),
        await h.client.get("/test/boom", headers=headers),
    ]


@pytest.mark.usefixtures("failing_routes")
async def test_every_response_carries_a_request_id(harness: Harness) -> None:
    responses = await _responses(harness, {})
    assert [r.status_code for r in responses] == [200, 401, 404, 405, 422, 500]
    ids = [r.headers.get("x-request-id", "") for r in responses]
    assert all(GENERATED_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    for r in responses[1:]:
        assert r.headers["content-type"] == PROBLEM_JSON


@pytest.mark.usefixtures("failing_routes")
@pytest.mark.parametrize("sent", ["abc", "0f6e-41.trace_id", "A" * 128])
async def test_a_sane_request_id_is_echoed(harness: Harness, sent: str) -> None:
    for r in await _responses(harness, {"X-Request-ID": sent}):
        assert r.headers["x-request-id"] == sent, r.request.url


@pytest.mark.usefixtures("failing_routes")
@pytest.mark.parametrize(
    "sent",
    ["A" * 129, "A" * 500, "has spaces in it", "tab\tin", "semi;colon", "<script>", '"quoted"'],
)
async def test_a_garbage_request_id_is_replaced(harness: Harness, sent: str) -> None:
    for r in await _responses(harness, {"X-Request-ID": sent}):
        assert GENERATED_ID.match(r.headers["x-request-id"]), r.request.url
        assert sent not in r.text


async def test_only_one_request_id_header_is_answered(harness: Harness) -> None:
    r = await harness.client.get("/healthz", headers={"X-Request-ID": "abc"})
    assert r.headers.get_list("x-request-id") == ["abc"]
