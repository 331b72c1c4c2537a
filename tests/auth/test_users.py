"""POST /api/v1/users: an admin creates users bound to a village, an agency or a cell."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import User
from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    WEST,
    WEST_SOUTH,
    bearer,
    count_where,
    load_grid,
    login_headers,
    make_user,
    problem_type,
    stored_api_key,
)

USERS = "/api/v1/users"
SECRET = "a long enough password"


def new_user(**fields: Any) -> dict[str, Any]:
    """A valid body for a grid worker in 西南村, with `fields` changed (None removes one)."""
    body: dict[str, Any] = {
        "username": "zhang.san",
        "password": SECRET,
        "name": "张三",
        "role": "grid_worker",
        "cell_code": WEST_SOUTH,
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


async def _users_named(h: Harness, username: str) -> int:
    return await count_where(h, User, User.username == username)


@pytest.mark.parametrize(
    ("body", "binding"),
    [
        (new_user(), {"cell_code": WEST_SOUTH, "agency_code": None}),
        (
            new_user(role="officer", cell_code=None, agency_code=WEST),
            {"cell_code": None, "agency_code": WEST},
        ),
        (
            new_user(role="officer", cell_code=None, agency_code="urban-management"),
            {"cell_code": None, "agency_code": "urban-management"},
        ),
        (
            new_user(role="supervisor", cell_code=DISTRICT),
            {"cell_code": DISTRICT, "agency_code": None},
        ),
        (new_user(role="supervisor", cell_code=WEST), {"cell_code": WEST, "agency_code": None}),
        (new_user(role="admin", cell_code=None), {"cell_code": None, "agency_code": None}),
    ],
)
async def test_admin_creates_a_user_of_each_role(
    harness: Harness, body: dict[str, Any], binding: dict[str, Any]
) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "admin")

    r = await harness.client.post(USERS, json=body, headers=headers)

    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {
        "id": created["id"],
        "username": "zhang.san",
        "name": "张三",
        "role": body["role"],
        **binding,
        "active": True,
    }
    assert r.headers["location"] == f"{USERS}/{created['id']}"
    assert SECRET not in r.text
    assert "password" not in r.text
    assert "argon2" not in r.text
    async with harness.db.read() as session:
        row = await session.get(User, created["id"])
        assert row is not None
        stored = (row.password_hash, row.role, row.cell_code, row.agency_code)
    assert stored[0].startswith("$argon2")
    assert stored[0] not in r.text
    assert stored[1:] == (body["role"], binding["cell_code"], binding["agency_code"])


async def test_the_new_user_can_log_in_and_see_itself(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    await harness.client.post(USERS, json=new_user(), headers=admin)

    token = await harness.client.post(
        "/api/v1/auth/token", data={"username": "zhang.san", "password": SECRET}
    )
    me = await harness.client.get(
        f"{USERS}/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )

    assert me.status_code == 200, me.text
    assert me.json()["username"] == "zhang.san"
    assert me.json()["cell_code"] == WEST_SOUTH
    assert "password" not in me.text


async def test_creating_a_user_is_audited(harness: Harness) -> None:
    await load_grid(harness)
    admin = await make_user(harness, "admin")
    r = await harness.client.post(USERS, json=new_user(), headers=bearer(harness, admin))
    async with harness.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.object_id == r.json()["id"])
        events = [
            (e.action, e.object_type, e.actor_kind, e.actor_id, str(e.detail))
            for e in await session.exec(query)
        ]
    assert [e[:4] for e in events] == [("user.created", "user", "user", admin.id)]
    assert SECRET not in events[0][4]


async def test_a_taken_username_is_a_conflict(harness: Harness) -> None:
    await load_grid(harness)
    await make_user(harness, "supervisor", username="zhang.san")
    headers = await login_headers(harness, "admin")

    r = await harness.client.post(USERS, json=new_user(), headers=headers)

    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == problem_type("conflict")
    assert await _users_named(harness, "zhang.san") == 1
    async with harness.db.read() as session:
        kept = await session.exec(select(User.role).where(User.username == "zhang.san"))
        assert kept.one() == "supervisor"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(new_user(cell_code=None), "cell_code", id="grid-worker-without-cell"),
        pytest.param(new_user(cell_code=WEST), "cell_code", id="grid-worker-in-a-township"),
        pytest.param(new_user(cell_code=DISTRICT), "cell_code", id="grid-worker-in-the-district"),
        pytest.param(new_user(cell_code="999999999999"), "cell_code", id="grid-worker-unknown"),
        pytest.param(
            new_user(role="officer", cell_code=None), "agency_code", id="officer-without-agency"
        ),
        pytest.param(
            new_user(role="officer", cell_code=None, agency_code="fire-brigade"),
            "agency_code",
            id="officer-unknown-agency",
        ),
        pytest.param(
            new_user(role="supervisor", cell_code=None), "cell_code", id="supervisor-without-cell"
        ),
        pytest.param(
            new_user(role="supervisor", cell_code="999"), "cell_code", id="supervisor-unknown"
        ),
        pytest.param(
            new_user(agency_code="urban-management"), "agency_code", id="grid-worker-with-agency"
        ),
        pytest.param(
            new_user(role="officer", agency_code="urban-management"),
            "cell_code",
            id="officer-with-cell",
        ),
        pytest.param(
            new_user(role="supervisor", cell_code=DISTRICT, agency_code="urban-management"),
            "agency_code",
            id="supervisor-with-agency",
        ),
        pytest.param(new_user(role="admin"), "cell_code", id="admin-with-cell"),
        pytest.param(
            new_user(role="admin", cell_code=None, agency_code="urban-management"),
            "agency_code",
            id="admin-with-agency",
        ),
        pytest.param(new_user(password="short"), "password", id="short-password"),
        pytest.param(new_user(role="mayor"), "role", id="unknown-role"),
        pytest.param(new_user(username="张 三"), "username", id="username-with-space"),
        pytest.param(new_user(name=""), "name", id="empty-name"),
        pytest.param(new_user(password_hash="$argon2id$x"), "password_hash", id="extra-field"),
    ],
)
async def test_refused_users_are_not_stored(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "admin")
    users, audits = await count_where(harness, User), await count_where(harness, AuditEvent)

    r = await harness.client.post(USERS, json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == problem_type("validation")
    assert field in [e["loc"][-1] for e in problem["errors"]]
    assert all(set(e) >= {"loc", "msg"} for e in problem["errors"])
    assert await count_where(harness, User) == users
    assert await _users_named(harness, body["username"]) == 0
    assert await count_where(harness, AuditEvent) == audits


async def test_a_refused_password_is_never_echoed(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    r = await harness.client.post(USERS, json=new_user(password="tiny-pw"), headers=headers)
    assert r.status_code == 422, r.text
    assert "tiny-pw" not in r.text


@pytest.mark.parametrize("role", ["grid_worker", "officer", "supervisor"])
async def test_only_admins_create_users(harness: Harness, role: str) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, role)

    r = await harness.client.post(USERS, json=new_user(), headers=headers)

    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")
    assert await _users_named(harness, "zhang.san") == 0


async def test_an_api_key_cannot_create_users(harness: Harness) -> None:
    await load_grid(harness)
    _, key = await stored_api_key(
        harness, "reports:write", "incidents:read", "grid:read", "webhooks:manage"
    )

    r = await harness.client.post(USERS, json=new_user(), headers={"X-API-Key": key})

    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")
    assert await _users_named(harness, "zhang.san") == 0


async def test_anonymous_callers_cannot_create_users(harness: Harness) -> None:
    await load_grid(harness)

    r = await harness.client.post(USERS, json=new_user())

    assert r.status_code == 401, r.text
    assert r.json()["type"] == problem_type("unauthorized")
    assert await _users_named(harness, "zhang.san") == 0


async def test_an_api_key_has_no_me(harness: Harness) -> None:
    _, key = await stored_api_key(harness, "grid:read")
    r = await harness.client.get(f"{USERS}/me", headers={"X-API-Key": key})
    assert r.status_code == 403, r.text
    assert r.json()["type"] == problem_type("forbidden")
