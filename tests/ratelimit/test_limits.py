"""Rate limits: writes per API key or user, failed logins per username, shared by processes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.clock import FrozenClock
from app.db import Database, create_engine
from app.deps import CurrentPrincipal
from app.main import create_app
from app.ratelimit import service as ratelimit
from app.webhooks.router import OwnerDep
from tests.conftest import Harness, settings_for
from tests.db.support import end_every_connection
from tests.factories import NOW, PASSWORD, make_api_key, make_user, problem_type

HOOK = {"url": "http://8.8.8.8/hook", "events": ["incident.created"]}


async def test_writes_over_the_limit_are_refused_until_the_minute_is_over(
    harness: Harness,
) -> None:
    h = harness
    h.settings.rate_limit_writes = 3
    key = await make_api_key(h, ["webhooks:manage"])
    h.clock.advance(timedelta(seconds=15))
    for _ in range(3):
        assert (await h.client.post("/api/v1/webhooks", json=HOOK, headers=key)).status_code == 201
    for _ in range(5):  # reads are not counted
        assert (await h.client.get("/api/v1/webhooks", headers=key)).status_code == 200
    refused = await h.client.post("/api/v1/webhooks", json=HOOK, headers=key)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == problem_type("rate-limited")
    assert refused.headers["Retry-After"] == "45"
    other = await make_api_key(h, ["webhooks:manage"])  # another key has its own count
    assert (await h.client.post("/api/v1/webhooks", json=HOOK, headers=other)).status_code == 201
    h.clock.advance(timedelta(seconds=45))
    assert (await h.client.post("/api/v1/webhooks", json=HOOK, headers=key)).status_code == 201


async def test_a_users_writes_are_counted_and_refused_writes_count_too(harness: Harness) -> None:
    h = harness
    h.settings.rate_limit_writes = 2
    admin = await make_user(h, "admin")
    headers = {
        "Authorization": "Bearer "
        + auth_service.issue_token(admin, h.settings.secret_key, h.clock.now(), 60)
    }
    bad = {"name": "", "scopes": []}
    for _ in range(2):
        answer = await h.client.post("/api/v1/apikeys", json=bad, headers=headers)
        assert answer.status_code == 422
    answer = await h.client.post("/api/v1/apikeys", json=bad, headers=headers)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "60"


async def test_writes_with_a_key_that_is_not_valid_are_counted_too(harness: Harness) -> None:
    """The count is made as the caller is looked up, whatever the lookup finds: guessing keys
    is writing too."""
    h = harness
    h.settings.rate_limit_writes = 2
    wrong = {"X-API-Key": "bb_not-a-key-of-ours"}
    for _ in range(2):
        answer = await h.client.post("/api/v1/webhooks", json=HOOK, headers=wrong)
        assert answer.status_code == 401
    refused = await h.client.post("/api/v1/webhooks", json=HOOK, headers=wrong)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    key = await make_api_key(h, ["webhooks:manage"])  # a valid key has a count of its own
    assert (await h.client.post("/api/v1/webhooks", json=HOOK, headers=key)).status_code == 201
    async with h.db.write() as session:
        data = ApiKeyCreate(name="revoked", scopes=["webhooks:manage"])
        stored, revoked = await auth_service.create_api_key(session, data, None, NOW)
        await auth_service.revoke_api_key(session, stored.id, None, NOW)
    for expected in (401, 401, 429):
        answer = await h.client.post("/api/v1/webhooks", json=HOOK, headers={"X-API-Key": revoked})
        assert answer.status_code == expected


async def test_a_route_asking_twice_for_its_caller_counts_its_write_once(
    harness: Harness,
) -> None:
    """The caller may come to a route both as itself and through a role check; either way
    it is looked up once, and its write counted once."""
    h = harness
    h.settings.rate_limit_writes = 2

    @h.app.post("/probe/twice")
    async def twice(caller: CurrentPrincipal, owner: OwnerDep) -> dict[str, bool]:
        return {"same": caller is owner}

    key = await make_api_key(h, ["webhooks:manage"])
    for _ in range(2):
        answer = await h.client.post("/probe/twice", headers=key)
        assert answer.status_code == 200 and answer.json() == {"same": True}
    assert (await h.client.post("/probe/twice", headers=key)).status_code == 429


async def test_failed_logins_are_limited_per_username(harness: Harness) -> None:
    h = harness
    user = await make_user(h, "admin", username="ops-admin")

    async def log_in(password: str, username: str = user.username) -> httpx.Response:
        form = {"username": username, "password": password}
        return await h.client.post("/api/v1/auth/token", data=form)

    assert (await log_in(PASSWORD)).status_code == 200  # successes are not counted
    for _ in range(10):
        assert (await log_in("wrong password")).status_code == 401
    refused = await log_in(PASSWORD)  # refused before the password is looked at
    assert refused.status_code == 429
    assert refused.json()["type"] == problem_type("rate-limited")
    assert int(refused.headers["Retry-After"]) == 60
    assert (await log_in("x", username="someone-else")).status_code == 401
    h.clock.advance(timedelta(minutes=1))
    assert (await log_in(PASSWORD)).status_code == 200


async def test_the_count_is_shared_by_every_api_process(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_database_url, tmp_path)
    settings.rate_limit_writes = 4
    clock = FrozenClock(NOW)
    dbs = [Database(create_engine(settings.url, settings)) for _ in range(2)]
    try:
        async with dbs[0].write() as session:
            _, key = await auth_service.create_api_key(
                session, ApiKeyCreate(name="k", scopes=["webhooks:manage"]), None, NOW
            )
        apps = [create_app(settings, database=db, clock=clock) for db in dbs]
        statuses = []
        for i in range(6):
            transport = httpx.ASGITransport(app=apps[i % 2])
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
                answer = await client.post(
                    "/api/v1/webhooks", json=HOOK, headers={"X-API-Key": key}
                )
                statuses.append(answer.status_code)
    finally:
        for db in dbs:
            await db.dispose()
    assert statuses == [201, 201, 201, 201, 429, 429]


async def test_a_counter_whose_connection_died_counts_on_a_new_one_at_once(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL restarted, say: the counters' connection it closed is noticed before it is
    used and replaced, so the count neither fails nor is lost."""
    if backend != "postgis":
        pytest.skip("only a database server closes connections; SQLite's is a file")
    settings = settings_for(fresh_database_url, tmp_path)
    db = Database(create_engine(settings.url, settings))
    try:
        assert await ratelimit.count(db, "writes:key:k", NOW) == 1
        assert await end_every_connection(fresh_database_url) >= 1
        assert await ratelimit.count(db, "writes:key:k", NOW) == 2
    finally:
        await db.dispose()
