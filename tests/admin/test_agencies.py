"""Agencies: bureaus are created by admins; township agencies come with the grid."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from app.agencies.models import Agency
from app.audit.models import AuditEvent
from tests.conftest import Harness
from tests.factories import (
    EAST,
    WEST,
    bearer,
    count_where,
    load_grid,
    login_headers,
    make_user,
    problem_type,
    stored_api_key,
)

AGENCIES = "/api/v1/agencies"
POLICE = {"code": "police", "name": "区公安分局", "kind": "bureau"}


async def test_admin_creates_a_bureau(harness: Harness) -> None:
    admin = await make_user(harness, "admin")

    r = await harness.client.post(AGENCIES, json=POLICE, headers=bearer(harness, admin))

    assert r.status_code == 201, r.text
    assert r.json() == {"code": "police", "name": "区公安分局", "kind": "bureau", "cell_code": None}
    assert r.headers["location"] == f"{AGENCIES}/police"
    listed = await harness.client.get(AGENCIES, headers=bearer(harness, admin))
    assert {"code": "police", "name": "区公安分局", "kind": "bureau", "cell_code": None} in (
        listed.json()["items"]
    )
    async with harness.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.object_id == "police")
        events = [(e.action, e.actor_id, e.detail) for e in await session.exec(query)]
    assert events == [("agency.created", admin.id, {"name": "区公安分局"})]


async def test_a_taken_code_is_a_conflict(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    await harness.client.post(AGENCIES, json=POLICE, headers=headers)

    r = await harness.client.post(AGENCIES, json={**POLICE, "name": "另一个"}, headers=headers)

    assert r.status_code == 409, r.text
    assert r.json()["type"] == problem_type("conflict")
    async with harness.db.read() as session:
        names = list(await session.exec(select(Agency.name).where(Agency.code == "police")))
    assert names == ["区公安分局"]


async def test_the_seeded_bureau_code_is_taken_too(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    body = {"code": "urban-management", "name": "冒名", "kind": "bureau"}
    r = await harness.client.post(AGENCIES, json=body, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["type"] == problem_type("conflict")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**POLICE, "kind": "township"}, id="township-kind"),
        pytest.param({"code": "police", "name": "区公安分局"}, id="no-kind"),
        pytest.param({**POLICE, "code": "has space"}, id="bad-code"),
        pytest.param({**POLICE, "code": ""}, id="empty-code"),
        pytest.param({**POLICE, "name": ""}, id="empty-name"),
        pytest.param({**POLICE, "cell_code": WEST}, id="extra-field"),
    ],
)
async def test_refused_agencies_are_not_stored(harness: Harness, body: dict[str, Any]) -> None:
    headers = await login_headers(harness, "admin")
    before = await count_where(harness, Agency)

    r = await harness.client.post(AGENCIES, json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")
    assert r.json()["errors"]
    assert await count_where(harness, Agency) == before


@pytest.mark.parametrize("role", ["grid_worker", "officer", "supervisor"])
async def test_only_admins_create_agencies(harness: Harness, role: str) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, role)

    r = await harness.client.post(AGENCIES, json=POLICE, headers=headers)

    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")
    assert await count_where(harness, Agency, Agency.code == "police") == 0


async def test_an_api_key_cannot_create_agencies(harness: Harness) -> None:
    _, key = await stored_api_key(harness, "grid:read", "webhooks:manage")
    r = await harness.client.post(AGENCIES, json=POLICE, headers={"X-API-Key": key})
    assert r.status_code == 403, r.text
    assert await count_where(harness, Agency, Agency.code == "police") == 0


async def test_anonymous_callers_see_no_agencies(harness: Harness) -> None:
    r = await harness.client.get(AGENCIES)
    assert r.status_code == 401, r.text
    assert r.json()["type"] == problem_type("unauthorized")


async def test_the_grid_import_makes_one_agency_per_township(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "grid_worker")

    r = await harness.client.get(AGENCIES, headers=headers)

    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    townships = [a for a in r.json()["items"] if a["kind"] == "township"]
    assert townships == [
        {"code": WEST, "name": "西镇", "kind": "township", "cell_code": WEST},
        {"code": EAST, "name": "东镇", "kind": "township", "cell_code": EAST},
    ]
    bureaus = [a["code"] for a in r.json()["items"] if a["kind"] == "bureau"]
    assert bureaus == ["urban-management"]


async def test_agencies_are_listed_in_pages_like_every_list(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "supervisor")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        r = await harness.client.get(AGENCIES, params=params, headers=headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= 1
        seen += [a["code"] for a in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    whole = await harness.client.get(AGENCIES, headers=headers)
    assert seen == [a["code"] for a in whole.json()["items"]]
    assert seen[0] == "urban-management" and set(seen) >= {WEST, EAST}

    r = await harness.client.get(AGENCIES, params={"cursor": "nonsense"}, headers=headers)
    assert r.status_code == 422
