"""API keys for third-party systems: created by admins, shown once, stored hashed, scoped."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import ApiKey
from tests.conftest import Harness
from tests.factories import (
    WEST,
    count_where,
    load_grid,
    login_headers,
    problem_type,
    stored_api_key,
)

KEYS = "/api/v1/apikeys"


def key_header(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def _create(h: Harness, body: dict[str, Any]) -> Any:
    return await h.client.post(KEYS, json=body, headers=await login_headers(h, "admin"))


async def test_a_new_key_is_shown_once_and_stored_only_as_its_sha256(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")

    r = await harness.client.post(
        KEYS,
        json={"name": "市监测平台", "scopes": ["grid:read", "reports:write"], "cell_code": WEST},
        headers=admin,
    )

    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert len(key) >= 32
    assert created["name"] == "市监测平台"
    assert created["scopes"] == ["grid:read", "reports:write"]
    assert created["cell_code"] == WEST
    assert created["revoked_at"] is None

    listed = await harness.client.get(KEYS, headers=admin)
    assert listed.status_code == 200, listed.text
    assert [k["id"] for k in listed.json()] == [created["id"]]
    assert key not in listed.text
    assert "key" not in listed.json()[0]
    assert "key_hash" not in listed.json()[0]

    async with harness.db.read() as session:
        conn = await session.connection()
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]}
                )
            )
            .mappings()
            .one()
        )
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row.values())


async def test_a_key_works_where_its_scope_allows(harness: Harness) -> None:
    await load_grid(harness)
    _, key = await stored_api_key(harness, "grid:read")

    r = await harness.client.get("/api/v1/cells", headers=key_header(key))

    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 7


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/users"), ("GET", KEYS), ("PUT", "/api/v1/categories/x")],
)
async def test_a_key_is_forbidden_on_admin_endpoints(
    harness: Harness, method: str, path: str
) -> None:
    _, key = await stored_api_key(
        harness, "reports:write", "incidents:read", "grid:read", "webhooks:manage"
    )
    r = await harness.client.request(method, path, json={}, headers=key_header(key))
    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")


async def test_a_key_without_the_scope_is_forbidden(harness: Harness) -> None:
    await load_grid(harness)
    _, key = await stored_api_key(harness, "reports:write")

    r = await harness.client.get("/api/v1/cells", headers=key_header(key))

    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")


@pytest.mark.parametrize("key", ["bb_not-a-key-we-issued", "not-even-our-prefix", ""])
async def test_an_unknown_key_is_unauthorized(harness: Harness, key: str) -> None:
    r = await harness.client.get("/api/v1/cells", headers=key_header(key))
    assert r.status_code == 401, r.text
    assert r.json()["type"] == problem_type("unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"name": "x", "scopes": ["grid:read"], "cell_code": "999"}, "cell_code"),
        pytest.param({"name": "x", "scopes": ["grid:write"]}, "scopes"),
        pytest.param({"name": "x", "scopes": []}, "scopes"),
        pytest.param({"name": "", "scopes": ["grid:read"]}, "name"),
        pytest.param({"name": "x", "scopes": ["grid:read"], "key": "bb_mine"}, "key"),
    ],
)
async def test_refused_keys_are_not_stored(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    await load_grid(harness)

    r = await _create(harness, body)

    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")
    assert field in [str(part) for e in r.json()["errors"] for part in e["loc"]]
    assert await count_where(harness, ApiKey) == 0


@pytest.mark.parametrize("role", ["grid_worker", "officer", "supervisor"])
async def test_only_admins_manage_keys(harness: Harness, role: str) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, role)
    row, _ = await stored_api_key(harness, "grid:read")

    created = await harness.client.post(
        KEYS, json={"name": "x", "scopes": ["grid:read"]}, headers=headers
    )
    listed = await harness.client.get(KEYS, headers=headers)
    revoked = await harness.client.delete(f"{KEYS}/{row.id}", headers=headers)

    assert [created.status_code, listed.status_code, revoked.status_code] == [403, 403, 403]
    assert await count_where(harness, ApiKey) == 1
    assert await count_where(harness, ApiKey, ApiKey.revoked_at.is_not(None)) == 0  # type: ignore[union-attr]


async def test_a_revoked_key_stops_working_at_once(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    row, key = await stored_api_key(harness, "grid:read")
    assert (await harness.client.get("/api/v1/cells", headers=key_header(key))).status_code == 200

    r = await harness.client.delete(f"{KEYS}/{row.id}", headers=admin)

    assert r.status_code == 204, r.text
    after = await harness.client.get("/api/v1/cells", headers=key_header(key))
    assert after.status_code == 401
    assert after.json()["type"] == problem_type("unauthorized")
    listed = (await harness.client.get(KEYS, headers=admin)).json()
    assert listed[0]["revoked_at"] == "2026-11-20T02:00:00Z"
    again = await harness.client.delete(f"{KEYS}/{row.id}", headers=admin)
    assert again.status_code == 404


async def test_revoking_an_unknown_key_is_not_found(harness: Harness) -> None:
    admin = await login_headers(harness, "admin")
    r = await harness.client.delete(f"{KEYS}/{'0' * 32}", headers=admin)
    assert r.status_code == 404, r.text
    assert r.json()["type"] == problem_type("not-found")


async def test_creating_and_revoking_keys_is_audited(harness: Harness) -> None:
    r = await _create(harness, {"name": "x", "scopes": ["incidents:read"]})
    key_id = r.json()["id"]
    await harness.client.delete(f"{KEYS}/{key_id}", headers=await login_headers(harness, "admin"))
    async with harness.db.read() as session:
        query = select(AuditEvent.action).where(AuditEvent.object_id == key_id)
        actions = list(await session.exec(query.order_by(AuditEvent.id)))  # type: ignore[arg-type]
    assert actions == ["apikey.created", "apikey.revoked"]
