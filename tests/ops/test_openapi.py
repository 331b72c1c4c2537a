"""The OpenAPI document describes the errors as they are answered, and every request body has
an example; a body of another media type is 415; a write the database refuses names the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from app.auth.models import ApiKey
from app.deps import SessionDep
from tests.conftest import Harness
from tests.factories import count_where, load_grid, login_headers, problem_type

PROBLEM_JSON = "application/problem+json"
WRITES = {"post", "put", "patch", "delete"}


async def _document(h: Harness) -> dict[str, Any]:
    r = await h.client.get("/openapi.json")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


async def test_every_error_of_the_api_is_documented_as_problem_json(harness: Harness) -> None:
    document = await _document(harness)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert "HTTPValidationError" not in str(document)
    for path, method, operation in _operations(document):
        if path.startswith("/open311/") or path in ("/healthz", "/readyz"):
            continue
        errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
        assert errors, f"{method} {path} documents no error"
        for status, response in errors.items():
            media = response["content"][PROBLEM_JSON]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, (path, status)
            assert media["example"]["status"] == status


async def test_each_operation_documents_the_statuses_it_answers(harness: Harness) -> None:
    document = await _document(harness)
    for path, method, operation in _operations(document):
        statuses = set(operation["responses"])
        if operation.get("security"):
            assert {"401", "403"} <= statuses, (method, path)
            if method in WRITES:
                assert "429" in statuses, (method, path)
        if "{" in path and not path.startswith("/open311/"):
            assert "404" in statuses, (method, path)
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            assert {"415", "422"} <= statuses, (method, path)
    paths = document["paths"]
    assert "412" in paths["/api/v1/incidents/{incident_id}/actions"]["post"]["responses"]
    assert "413" in paths["/api/v1/reports"]["post"]["responses"]
    assert "409" in paths["/api/v1/users"]["post"]["responses"]
    assert {"201", "200"} <= set(paths["/api/v1/categories/{code}"]["put"]["responses"])
    assert {"401", "429"} <= set(paths["/api/v1/auth/token"]["post"]["responses"])


async def test_open311_documents_the_specifications_errors(harness: Harness) -> None:
    document = await _document(harness)
    for path, _, operation in _operations(document):
        if path.startswith("/open311/"):
            assert "422" not in operation["responses"], path
            media = "application/xml" if path.endswith(".xml") else "application/json"
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert set(response["content"]) == {media}, (path, status)


async def test_every_request_body_has_an_example(harness: Harness) -> None:
    document = await _document(harness)
    schemas = document["components"]["schemas"]
    for path, method, operation in _operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            schema = media.get("schema", {})
            if "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
            assert {"example", "examples"} & (set(media) | set(schema)), (method, path, media_type)


async def test_a_body_that_is_not_json_is_415(harness: Harness) -> None:
    headers = {**await login_headers(harness, "admin"), "Content-Type": "text/plain"}
    body = b'{"name": "x", "scopes": ["grid:read"]}'

    r = await harness.client.post("/api/v1/apikeys", content=body, headers=headers)

    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == problem_type("unsupported-media-type")
    assert "application/json" in r.json()["detail"] and "text/plain" in r.json()["detail"]
    assert await count_where(harness, ApiKey) == 0


async def test_malformed_json_says_where(harness: Harness) -> None:
    headers = {**await login_headers(harness, "admin"), "Content-Type": "application/json"}

    r = await harness.client.post(
        "/api/v1/apikeys", content=b'{\n  "name": "x",\n  "scopes": [grid]\n}', headers=headers
    )

    assert r.status_code == 422
    assert "line 3, column 14" in r.json()["detail"]
    assert await count_where(harness, ApiKey) == 0


async def test_an_api_key_with_an_empty_cell_is_refused_naming_the_field(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    body = {"name": "x", "scopes": ["grid:read"], "cell_code": ""}

    r = await harness.client.post("/api/v1/apikeys", json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "cell_code"]
    assert await count_where(harness, ApiKey) == 0


@pytest.fixture
def unchecked_writes(harness: Harness) -> Iterator[None]:
    """Routes that write what no service checked first, added to this test's app only."""
    app: FastAPI = harness.app
    now = harness.clock.now()

    async def key_in_no_cell(session: SessionDep) -> None:
        session.add(ApiKey(name="x", key_hash="h1", prefix="bb_x", cell_code="999", created_at=now))
        await session.flush()

    async def same_key_twice(session: SessionDep) -> None:
        for name in ("a", "b"):
            session.add(ApiKey(name=name, key_hash="same", prefix="bb_x", created_at=now))
            await session.flush()

    async def key_without_name(session: SessionDep) -> None:
        session.add(ApiKey(name=None, key_hash="h2", prefix="bb_x", created_at=now))  # type: ignore[arg-type]
        await session.flush()

    app.add_api_route("/test/fk", key_in_no_cell, methods=["POST"])
    app.add_api_route("/test/unique", same_key_twice, methods=["POST"])
    app.add_api_route("/test/not-null", key_without_name, methods=["POST"])
    yield


@pytest.mark.usefixtures("unchecked_writes")
async def test_a_reference_to_nothing_is_422_naming_the_field(harness: Harness) -> None:
    await load_grid(harness)
    r = await harness.client.post("/test/fk")

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["errors"] == [
        {"loc": ["body", "cell_code"], "msg": "refers to something that does not exist"}
    ]
    assert "cell_code" in r.json()["detail"]
    assert await count_where(harness, ApiKey) == 0


@pytest.mark.usefixtures("unchecked_writes")
async def test_a_taken_value_is_409_naming_the_field(harness: Harness) -> None:
    r = await harness.client.post("/test/unique")

    assert r.status_code == 409, r.text
    assert r.json()["type"] == problem_type("conflict")
    assert "key_hash" in r.json()["detail"]
    assert await count_where(harness, ApiKey) == 0


@pytest.mark.usefixtures("unchecked_writes")
async def test_a_missing_value_is_422_naming_the_field(harness: Harness) -> None:
    r = await harness.client.post("/test/not-null")

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "name"]
    assert await count_where(harness, ApiKey) == 0
