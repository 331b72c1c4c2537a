"""POST /api/v1/auth/token: a username and password for an expiring bearer token."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest

from app.auth.models import User
from tests.conftest import Harness
from tests.factories import PASSWORD, load_grid, make_user, problem_type

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"


async def _login(h: Harness, username: str, password: str = PASSWORD) -> httpx.Response:
    return await h.client.post(TOKEN, data={"username": username, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _me(h: Harness, token: str) -> dict[str, str]:
    r = await h.client.get(ME, headers=_bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def _assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == problem_type("unauthorized")


async def test_password_form_answers_a_bearer_token_that_works(harness: Harness) -> None:
    await load_grid(harness)
    user = await make_user(harness, "grid_worker", username="wang.wei")

    r = await _login(harness, "wang.wei")

    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == harness.settings.access_token_minutes * 60
    me = await harness.client.get(ME, headers=_bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": user.id,
        "username": "wang.wei",
        "name": user.name,
        "role": "grid_worker",
        "cell_code": user.cell_code,
        "agency_code": None,
        "active": True,
    }


async def test_wrong_password_and_unknown_user_get_the_same_refusal(harness: Harness) -> None:
    await make_user(harness, "admin", username="root")

    wrong_password = await _login(harness, "root", "not the password")
    unknown_user = await _login(harness, "nobody", PASSWORD)

    _assert_unauthorized(wrong_password)
    _assert_unauthorized(unknown_user)
    assert wrong_password.json()["detail"] == unknown_user.json()["detail"]
    assert "access_token" not in wrong_password.json()


async def test_an_inactive_user_cannot_log_in_nor_use_an_earlier_token(
    harness: Harness,
) -> None:
    await make_user(harness, "admin", username="left.the.job")
    token = (await _login(harness, "left.the.job")).json()["access_token"]
    async with harness.db.write() as session:
        user = await session.get(User, (await _me(harness, token))["id"])
        assert user is not None
        user.is_active = False
        session.add(user)

    _assert_unauthorized(await _login(harness, "left.the.job"))
    _assert_unauthorized(await harness.client.get(ME, headers=_bearer(token)))


async def test_a_token_stops_working_when_it_expires(harness: Harness) -> None:
    await make_user(harness, "officer", username="li.na")
    token = (await _login(harness, "li.na")).json()["access_token"]
    lifetime = timedelta(minutes=harness.settings.access_token_minutes)

    harness.clock.advance(lifetime - timedelta(seconds=1))
    assert (await harness.client.get(ME, headers=_bearer(token))).status_code == 200

    harness.clock.advance(timedelta(seconds=1))
    _assert_unauthorized(await harness.client.get(ME, headers=_bearer(token)))


async def test_a_token_signed_with_another_secret_is_refused(harness: Harness) -> None:
    user = await make_user(harness, "admin")
    now = int(harness.clock.now().timestamp())
    forged = jwt.encode(
        {"sub": user.id, "iat": now, "exp": now + 3600},
        "another-secret-that-is-also-long-enough-0123456789",
        algorithm="HS256",
    )
    _assert_unauthorized(await harness.client.get(ME, headers=_bearer(forged)))


async def test_an_unsigned_token_is_refused(harness: Harness) -> None:
    user = await make_user(harness, "admin")
    now = int(harness.clock.now().timestamp())
    unsigned = jwt.encode({"sub": user.id, "iat": now, "exp": now + 3600}, "", algorithm="none")
    _assert_unauthorized(await harness.client.get(ME, headers=_bearer(unsigned)))


async def test_a_token_for_a_user_that_does_not_exist_is_refused(harness: Harness) -> None:
    now = int(harness.clock.now().timestamp())
    token = jwt.encode(
        {"sub": "0" * 32, "iat": now, "exp": now + 3600},
        harness.settings.secret_key,
        algorithm="HS256",
    )
    _assert_unauthorized(await harness.client.get(ME, headers=_bearer(token)))


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer a.b.c", "Bearer ", "Basic cm9vdDpwYXNzd29yZA==", "garbage"],
)
async def test_a_garbage_authorization_header_is_refused(
    harness: Harness, authorization: str
) -> None:
    r = await harness.client.get(ME, headers={"Authorization": authorization})
    _assert_unauthorized(r)


async def test_no_credentials_is_401_with_a_bearer_challenge(harness: Harness) -> None:
    r = await harness.client.get(ME)
    _assert_unauthorized(r)
    assert r.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize("missing", ["username", "password"])
async def test_an_incomplete_login_form_is_a_validation_error(
    harness: Harness, missing: str
) -> None:
    form = {"username": "root", "password": PASSWORD}
    del form[missing]
    r = await harness.client.post(TOKEN, data=form)
    assert r.status_code == 422
    assert r.json()["type"] == problem_type("validation")
    assert [e["loc"] for e in r.json()["errors"]] == [["body", missing]]
