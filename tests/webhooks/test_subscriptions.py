"""Subscribing: who may, what is refused, and the secret shown once."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.factories import (
    DISTRICT,
    EAST,
    WEST,
    WEST_SOUTH,
    load_grid,
    login_headers,
    make_api_key,
    problem_type,
    stored_api_key,
)

EVENTS = ["incident.created", "incident.updated", "report.created"]


async def test_a_key_subscribes_and_sees_the_secret_once(harness: Harness) -> None:
    h = harness
    h.settings.webhook_allow_private = True
    key = await make_api_key(h, ["webhooks:manage"])
    body = {"url": "http://127.0.0.1:9/hook", "events": ["incident.created"]}
    created = await h.client.post("/api/v1/webhooks", json=body, headers=key)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert created.headers["Location"] == f"/api/v1/webhooks/{hook['id']}"
    assert hook["url"] == body["url"] and hook["events"] == ["incident.created"]
    assert hook["cell"] is None and hook["disabled_at"] is None

    listed = await h.client.get("/api/v1/webhooks", headers=key)
    assert [item["id"] for item in listed.json()["items"]] == [hook["id"]]
    one = await h.client.get(f"/api/v1/webhooks/{hook['id']}", headers=key)
    assert one.status_code == 200
    assert "secret" not in one.json() and "secret" not in listed.json()["items"][0]

    assert (await h.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=key)).status_code == 204
    gone = await h.client.get(f"/api/v1/webhooks/{hook['id']}", headers=key)
    assert gone.status_code == 404


async def test_another_keys_subscription_is_not_found(harness: Harness) -> None:
    h = harness
    h.settings.webhook_allow_private = True
    mine = await make_api_key(h, ["webhooks:manage"])
    theirs = await make_api_key(h, ["webhooks:manage"])
    body = {"url": "http://127.0.0.1:9/hook", "events": EVENTS}
    hook = (await h.client.post("/api/v1/webhooks", json=body, headers=theirs)).json()
    for path in (f"/api/v1/webhooks/{hook['id']}", f"/api/v1/webhooks/{hook['id']}/deliveries"):
        answer = await h.client.get(path, headers=mine)
        assert answer.status_code == 404 and answer.json()["type"] == problem_type("not-found")
    assert (
        await h.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=mine)
    ).status_code == 404
    assert (await h.client.get("/api/v1/webhooks", headers=mine)).json()["items"] == []


async def test_only_keys_with_webhooks_manage_and_admins_may_subscribe(harness: Harness) -> None:
    h = harness
    await load_grid(h)
    body = {"url": "http://8.8.8.8/hook", "events": EVENTS}
    assert (await h.client.post("/api/v1/webhooks", json=body)).status_code == 401
    reader = await make_api_key(h, ["incidents:read"])
    assert (await h.client.post("/api/v1/webhooks", json=body, headers=reader)).status_code == 403
    supervisor = await login_headers(h, "supervisor")
    assert (
        await h.client.post("/api/v1/webhooks", json=body, headers=supervisor)
    ).status_code == 403


async def test_an_admin_manages_every_keys_subscriptions(harness: Harness) -> None:
    h = harness
    h.settings.webhook_allow_private = True
    await load_grid(h)
    admin = await login_headers(h, "admin")
    key_row, key = await stored_api_key(h, "webhooks:manage", cell_code=WEST)
    body = {"url": "http://127.0.0.1:9/hook", "events": EVENTS}

    unnamed = await h.client.post("/api/v1/webhooks", json=body, headers=admin)
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["loc"] == ["body", "api_key_id"]
    created = await h.client.post(
        "/api/v1/webhooks", json={**body, "api_key_id": key_row.id}, headers=admin
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["api_key_id"] == key_row.id and hook["cell"] == WEST  # the key's own cell
    assert hook["secret"].startswith("whsec_")

    theirs = await h.client.post("/api/v1/webhooks", json=body, headers={"X-API-Key": key})
    listed = await h.client.get("/api/v1/webhooks", headers=admin)
    assert {item["id"] for item in listed.json()["items"]} == {hook["id"], theirs.json()["id"]}
    key_sees = await h.client.get("/api/v1/webhooks", headers={"X-API-Key": key})
    assert len(key_sees.json()["items"]) == 2  # made for it by the admin, and its own
    for path in (f"/api/v1/webhooks/{hook['id']}", f"/api/v1/webhooks/{hook['id']}/deliveries"):
        assert (await h.client.get(path, headers=admin)).status_code == 200
    assert (
        await h.client.delete(f"/api/v1/webhooks/{theirs.json()['id']}", headers=admin)
    ).status_code == 204
    other = await h.client.post(
        "/api/v1/webhooks", json={**body, "api_key_id": "x"}, headers={"X-API-Key": key}
    )
    assert other.status_code == 422  # a key subscribes for itself only


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",  # a name that resolves to loopback
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "ftp://8.8.8.8/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///nohost",
    ],
)
async def test_targets_inside_the_network_are_refused(harness: Harness, url: str) -> None:
    key = await make_api_key(harness, ["webhooks:manage"])
    answer = await harness.client.post(
        "/api/v1/webhooks", json={"url": url, "events": EVENTS}, headers=key
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"] == problem_type("validation")
    assert problem["errors"][0]["loc"] == ["body", "url"]
    if "non-public" in problem["detail"]:
        assert "BURNBAN_WEBHOOK_ALLOW_PRIVATE=true" in problem["detail"]


async def test_the_refusal_of_a_private_target_names_the_setting(harness: Harness) -> None:
    key = await make_api_key(harness, ["webhooks:manage"])
    answer = await harness.client.post(
        "/api/v1/webhooks", json={"url": "http://10.1.2.3/hook", "events": EVENTS}, headers=key
    )
    assert answer.status_code == 422
    assert "BURNBAN_WEBHOOK_ALLOW_PRIVATE=true" in answer.json()["detail"]


async def test_the_operator_may_allow_private_targets_but_not_other_schemes(
    harness: Harness,
) -> None:
    h = harness
    h.settings.webhook_allow_private = True
    key = await make_api_key(h, ["webhooks:manage"])
    for url, status in (("http://localhost:8080/hook", 201), ("ftp://127.0.0.1/x", 422)):
        answer = await h.client.post(
            "/api/v1/webhooks", json={"url": url, "events": EVENTS}, headers=key
        )
        assert answer.status_code == status, answer.text


async def test_a_public_address_is_accepted(harness: Harness) -> None:
    key = await make_api_key(harness, ["webhooks:manage"])
    answer = await harness.client.post(
        "/api/v1/webhooks", json={"url": "https://8.8.8.8/hook", "events": EVENTS}, headers=key
    )
    assert answer.status_code == 201, answer.text


async def test_the_cell_filter_must_name_a_cell_within_the_keys_own(harness: Harness) -> None:
    h = harness
    h.settings.webhook_allow_private = True
    await load_grid(h)
    west_key = await make_api_key(h, ["webhooks:manage"], cell_code=WEST)
    url = "http://127.0.0.1:9/hook"

    async def subscribe(cell: str | None) -> tuple[int, dict[str, object]]:
        body = {"url": url, "events": EVENTS, "cell": cell}
        answer = await h.client.post("/api/v1/webhooks", json=body, headers=west_key)
        return answer.status_code, answer.json()

    assert (await subscribe(WEST_SOUTH))[0] == 201
    status, hook = await subscribe(None)
    assert status == 201 and hook["cell"] == WEST  # a cell-bound key only hears its own cell
    assert (await subscribe(EAST))[0] == 422
    assert (await subscribe(DISTRICT))[0] == 422
    assert (await subscribe("999999"))[0] == 422


async def test_unknown_event_types_are_refused(harness: Harness) -> None:
    key = await make_api_key(harness, ["webhooks:manage"])
    for events in (["incident.deleted"], []):
        answer = await harness.client.post(
            "/api/v1/webhooks", json={"url": "http://8.8.8.8/", "events": events}, headers=key
        )
        assert answer.status_code == 422
