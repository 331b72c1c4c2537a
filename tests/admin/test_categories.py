"""Categories: routing rule, time limits and merge rule are data an admin maintains."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from app.audit.models import AuditEvent
from app.categories.models import Category
from tests.conftest import Harness
from tests.factories import (
    WEST,
    bearer,
    count_where,
    load_grid,
    login_headers,
    make_user,
    problem_type,
    stored_api_key,
)

CATEGORIES = "/api/v1/categories"


def straw_piles(**changes: Any) -> dict[str, Any]:
    """A valid PUT body for a new category, with `changes` applied."""
    body: dict[str, Any] = {
        "name": "秸秆堆放",
        "materials": ["straw"],
        "routing": {"lead": ["urban-management"], "cooperating": []},
        "time_limits": {"acknowledge_minutes": 20, "arrive_minutes": 90, "resolve_minutes": 600},
        "merge": {"radius_m": 150.0, "window_minutes": 120},
    }
    body.update(changes)
    return body


async def _stored(h: Harness, code: str) -> tuple[Any, ...] | None:
    async with h.db.read() as session:
        c = await session.get(Category, code)
        if c is None:
            return None
        return (c.name, c.lead, c.cooperating, c.acknowledge_minutes, c.merge_radius_m)


async def test_a_new_database_has_the_two_default_categories(harness: Harness) -> None:
    headers = await login_headers(harness, "officer")
    r = await harness.client.get(CATEGORIES, headers=headers)

    assert r.status_code == 200, r.text
    by_code = {c["code"]: c for c in r.json()}
    assert sorted(by_code) == ["cured_meat_smoking", "open_burning"]
    assert by_code["open_burning"]["routing"] == {"lead": ["urban-management"], "cooperating": []}
    assert by_code["open_burning"]["time_limits"] == {
        "acknowledge_minutes": 15,
        "arrive_minutes": 60,
        "resolve_minutes": 120,
    }
    assert by_code["open_burning"]["materials"] == ["straw", "garbage", "leaves", "other"]
    assert by_code["cured_meat_smoking"]["routing"] == {
        "lead": ["urban-management"],
        "cooperating": [],
    }
    assert by_code["cured_meat_smoking"]["time_limits"] == {
        "acknowledge_minutes": 30,
        "arrive_minutes": 120,
        "resolve_minutes": 1440,
    }
    for category in by_code.values():
        assert category["merge"] == {"radius_m": 300, "window_minutes": 360}


async def test_put_creates_then_replaces(harness: Harness) -> None:
    await load_grid(harness)
    admin = await make_user(harness, "admin")
    headers = bearer(harness, admin)

    created = await harness.client.put(
        f"{CATEGORIES}/straw_piles", json=straw_piles(), headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json() == {"code": "straw_piles", **straw_piles()}

    replacement = straw_piles(
        name="秸秆堆放（修订）",
        routing={"lead": [WEST], "cooperating": ["urban-management"]},
    )
    replaced = await harness.client.put(
        f"{CATEGORIES}/straw_piles", json=replacement, headers=headers
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"code": "straw_piles", **replacement}

    listed = await harness.client.get(CATEGORIES, headers=headers)
    assert {"code": "straw_piles", **replacement} in listed.json()
    assert await _stored(harness, "straw_piles") == (
        "秸秆堆放（修订）",
        [WEST],
        ["urban-management"],
        20,
        150.0,
    )
    async with harness.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.object_id == "straw_piles")
        events = [(e.action, e.actor_id) for e in await session.exec(query)]
    assert sorted(events) == [("category.created", admin.id), ("category.updated", admin.id)]


async def test_a_default_category_can_be_rerouted(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "admin")
    body = straw_piles(name="露天焚烧", routing={"lead": [WEST], "cooperating": []})

    r = await harness.client.put(f"{CATEGORIES}/open_burning", json=body, headers=headers)

    assert r.status_code == 200, r.text
    assert (await _stored(harness, "open_burning")) == ("露天焚烧", [WEST], [], 20, 150.0)


async def test_an_unknown_agency_in_the_routing_changes_nothing(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    before = await _stored(harness, "open_burning")
    audits = await count_where(harness, AuditEvent)

    body = straw_piles(routing={"lead": ["urban-management"], "cooperating": ["fire-brigade"]})
    replaced = await harness.client.put(f"{CATEGORIES}/open_burning", json=body, headers=headers)
    created = await harness.client.put(f"{CATEGORIES}/straw_piles", json=body, headers=headers)

    for r in (replaced, created):
        assert r.status_code == 422, r.text
        assert r.json()["type"] == problem_type("validation")
        assert "fire-brigade" in str(r.json()["errors"])
    assert await _stored(harness, "open_burning") == before
    assert await _stored(harness, "straw_piles") is None
    assert await count_where(harness, AuditEvent) == audits


@pytest.mark.parametrize("code", ["Straw", "1straw", "straw-piles", "a" * 41, "秸秆"])
async def test_a_bad_code_is_refused(harness: Harness, code: str) -> None:
    headers = await login_headers(harness, "admin")

    r = await harness.client.put(f"{CATEGORIES}/{code}", json=straw_piles(), headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")
    assert r.json()["errors"][0]["loc"] == ["path", "code"]
    assert await count_where(harness, Category) == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            straw_piles(
                time_limits={"acknowledge_minutes": 0, "arrive_minutes": 1, "resolve_minutes": 1}
            ),
            id="zero-limit",
        ),
        pytest.param(straw_piles(time_limits=None), id="no-limits"),
        pytest.param(
            straw_piles(merge={"radius_m": -1, "window_minutes": 10}), id="negative-radius"
        ),
        pytest.param(straw_piles(routing={"lead": "urban-management"}), id="lead-not-a-list"),
        pytest.param(straw_piles(name=""), id="empty-name"),
        pytest.param(straw_piles(colour="red"), id="extra-field"),
    ],
)
async def test_a_bad_body_is_refused(harness: Harness, body: dict[str, Any]) -> None:
    headers = await login_headers(harness, "admin")

    r = await harness.client.put(f"{CATEGORIES}/straw_piles", json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")
    assert await _stored(harness, "straw_piles") is None


@pytest.mark.parametrize("role", ["grid_worker", "officer", "supervisor"])
async def test_only_admins_write_categories(harness: Harness, role: str) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, role)
    before = await _stored(harness, "open_burning")

    created = await harness.client.put(
        f"{CATEGORIES}/straw_piles", json=straw_piles(), headers=headers
    )
    replaced = await harness.client.put(
        f"{CATEGORIES}/open_burning", json=straw_piles(), headers=headers
    )
    listed = await harness.client.get(CATEGORIES, headers=headers)

    assert (created.status_code, replaced.status_code, listed.status_code) == (403, 403, 200)
    assert created.json()["type"] == problem_type("forbidden")
    assert await _stored(harness, "straw_piles") is None
    assert await _stored(harness, "open_burning") == before


async def test_an_api_key_cannot_write_categories(harness: Harness) -> None:
    _, key = await stored_api_key(harness, "reports:write", "grid:read")
    r = await harness.client.put(
        f"{CATEGORIES}/straw_piles", json=straw_piles(), headers={"X-API-Key": key}
    )
    assert r.status_code == 403, r.text
    assert await _stored(harness, "straw_piles") is None


async def test_anonymous_callers_see_no_categories(harness: Harness) -> None:
    r = await harness.client.get(CATEGORIES)
    assert r.status_code == 401, r.text
    assert r.json()["type"] == problem_type("unauthorized")


async def test_a_category_read_may_be_put_back_as_it_is(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    read = await harness.client.get("/api/v1/categories/open_burning", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["code"] == "open_burning"

    put = await harness.client.put(
        "/api/v1/categories/open_burning", json=read.json(), headers=headers
    )

    assert put.status_code == 200, put.text
    assert put.json() == read.json()


async def test_a_category_put_under_another_code_is_refused(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    body = (await harness.client.get("/api/v1/categories/open_burning", headers=headers)).json()

    r = await harness.client.put("/api/v1/categories/straw_only", json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "code"]
    missing = await harness.client.get("/api/v1/categories/straw_only", headers=headers)
    assert missing.status_code == 404
