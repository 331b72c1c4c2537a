"""GET /users, GET and PATCH /users/{id}: an admin lists users, reads one, disables or enables
it, changes its role, cell or agency, or resets its password."""

from __future__ import annotations

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import User
from tests.conftest import Harness
from tests.factories import (
    PASSWORD,
    WEST,
    WEST_SOUTH,
    bearer,
    load_grid,
    login_headers,
    make_user,
    problem_type,
)

USERS = "/api/v1/users"
ME = "/api/v1/users/me"


async def test_an_admin_lists_users_in_pages(harness: Harness) -> None:
    await load_grid(harness)
    admin = await make_user(harness, "admin", username="a-admin")
    for name in ("b-worker", "c-worker", "d-worker"):
        await make_user(harness, "grid_worker", username=name)
    headers = bearer(harness, admin)

    first = await harness.client.get(USERS, params={"limit": 2}, headers=headers)
    assert first.status_code == 200, first.text
    assert [u["username"] for u in first.json()["items"]] == ["a-admin", "b-worker"]
    rest = await harness.client.get(
        USERS, params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=headers
    )
    assert [u["username"] for u in rest.json()["items"]] == ["c-worker", "d-worker"]
    assert rest.json()["next_cursor"] is None
    workers = await harness.client.get(USERS, params={"role": "grid_worker"}, headers=headers)
    assert len(workers.json()["items"]) == 3
    for user in first.json()["items"]:
        assert "password" not in str(user) and user["active"] is True


async def test_the_location_of_a_new_user_answers_it(harness: Harness) -> None:
    await load_grid(harness)
    headers = await login_headers(harness, "admin")
    body = {
        "username": "li.si",
        "password": PASSWORD,
        "name": "李四",
        "role": "grid_worker",
        "cell_code": WEST_SOUTH,
    }
    created = await harness.client.post(USERS, json=body, headers=headers)

    r = await harness.client.get(created.headers["location"], headers=headers)

    assert r.status_code == 200, r.text
    assert r.json() == created.json()
    missing = await harness.client.get(f"{USERS}/nobody", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["type"] == problem_type("not-found")


async def test_only_admins_manage_users(harness: Harness) -> None:
    await load_grid(harness)
    worker = await make_user(harness, "grid_worker")
    supervisor = await login_headers(harness, "supervisor")
    for method, url, body in (
        ("GET", USERS, None),
        ("GET", f"{USERS}/{worker.id}", None),
        ("PATCH", f"{USERS}/{worker.id}", {"active": False}),
    ):
        r = await harness.client.request(method, url, json=body, headers=supervisor)
        assert r.status_code == 403, (method, url)
    assert (await harness.client.get(ME, headers=bearer(harness, worker))).status_code == 200


async def test_a_disabled_users_tokens_stop_working_on_the_next_request(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    worker = await make_user(harness, "grid_worker", username="wang.wu")
    token = bearer(harness, worker)
    assert (await harness.client.get(ME, headers=token)).status_code == 200

    r = await harness.client.patch(f"{USERS}/{worker.id}", json={"active": False}, headers=admin)

    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    for attempt in (
        harness.client.get(ME, headers=token),
        harness.client.post("/api/v1/reports", json={}, headers=token),
    ):
        refused = await attempt
        assert refused.status_code == 401
        assert refused.json()["type"] == problem_type("unauthorized")
    login = {"username": "wang.wu", "password": PASSWORD}
    assert (await harness.client.post("/api/v1/auth/token", data=login)).status_code == 401

    enabled = await harness.client.patch(
        f"{USERS}/{worker.id}", json={"active": True}, headers=admin
    )
    assert enabled.json()["active"] is True
    assert (await harness.client.get(ME, headers=token)).status_code == 200


async def test_a_role_and_binding_change_is_judged_as_it_will_be(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    worker = await make_user(harness, "grid_worker")
    url = f"{USERS}/{worker.id}"

    no_agency = await harness.client.patch(url, json={"role": "officer"}, headers=admin)
    assert no_agency.status_code == 422
    assert no_agency.json()["errors"][0]["loc"] == ["body", "agency_code"]
    township = await harness.client.patch(url, json={"cell_code": WEST}, headers=admin)
    assert township.status_code == 422  # a grid worker is bound to a village
    unknown = await harness.client.patch(
        url, json={"role": "officer", "agency_code": "nope"}, headers=admin
    )
    assert unknown.status_code == 422
    async with harness.db.read() as session:
        unchanged = await session.get(User, worker.id)
        assert unchanged is not None
        assert (unchanged.role, unchanged.cell_code) == ("grid_worker", WEST_SOUTH)

    r = await harness.client.patch(
        url, json={"role": "officer", "agency_code": "urban-management"}, headers=admin
    )

    assert r.status_code == 200, r.text
    assert (r.json()["role"], r.json()["cell_code"], r.json()["agency_code"]) == (
        "officer",
        None,
        "urban-management",
    )
    me = await harness.client.get(ME, headers=bearer(harness, worker))
    assert me.json()["role"] == "officer"
    async with harness.db.read() as session:
        query = select(AuditEvent).where(
            AuditEvent.object_id == worker.id, AuditEvent.action == "user.updated"
        )
        details = [e.detail for e in await session.exec(query)]
    assert details == [{"role": "officer", "cell_code": None, "agency_code": "urban-management"}]


async def test_a_password_reset_takes_the_new_password_only(harness: Harness) -> None:
    await load_grid(harness)
    admin = await login_headers(harness, "admin")
    worker = await make_user(harness, "grid_worker", username="zhao.liu")

    r = await harness.client.patch(
        f"{USERS}/{worker.id}", json={"password": "a brand new password"}, headers=admin
    )

    assert r.status_code == 200, r.text
    token = "/api/v1/auth/token"
    old = {"username": "zhao.liu", "password": PASSWORD}
    new = {"username": "zhao.liu", "password": "a brand new password"}
    assert (await harness.client.post(token, data=old)).status_code == 401
    assert (await harness.client.post(token, data=new)).status_code == 200
    short = await harness.client.patch(
        f"{USERS}/{worker.id}", json={"password": "short"}, headers=admin
    )
    assert short.status_code == 422


async def test_an_admin_does_not_disable_or_demote_itself(harness: Harness) -> None:
    admin = await make_user(harness, "admin")
    headers = bearer(harness, admin)
    for body in ({"active": False}, {"role": "supervisor", "cell_code": WEST}):
        r = await harness.client.patch(f"{USERS}/{admin.id}", json=body, headers=headers)
        assert r.status_code == 422, body
    assert (await harness.client.get(ME, headers=headers)).json()["active"] is True
