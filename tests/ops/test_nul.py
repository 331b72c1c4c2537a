"""Text holding the NUL character is refused alike on both databases (PostgreSQL cannot
store it): 422 problem+json, or Open311's 400, and nothing stored."""

from __future__ import annotations

from app.categories.models import Category
from tests.conftest import Harness
from tests.factories import count_where, login_headers, problem_type


async def test_a_nul_in_a_json_body_is_refused_and_nothing_stored(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    body = {
        "name": "露天\u0000焚烧",
        "time_limits": {"acknowledge_minutes": 1, "arrive_minutes": 1, "resolve_minutes": 1},
    }

    r = await harness.client.put("/api/v1/categories/nul_test", json=body, headers=headers)

    assert r.status_code == 422, r.text
    assert r.json()["type"] == problem_type("validation")
    assert "NUL" in r.json()["detail"]
    assert await count_where(harness, Category, Category.code == "nul_test") == 0


async def test_an_escaped_backslash_before_u0000_is_ordinary_text(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    body = {
        "name": "C:\\u0000",
        "time_limits": {"acknowledge_minutes": 1, "arrive_minutes": 1, "resolve_minutes": 1},
    }

    r = await harness.client.put("/api/v1/categories/nul_test", json=body, headers=headers)

    assert r.status_code == 201, r.text
    assert r.json()["name"] == "C:\\u0000"


async def test_a_nul_in_the_query_or_the_path_is_refused(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")
    for url in ("/api/v1/cells?parent=33%00", "/api/v1/cells/33%00"):
        r = await harness.client.get(url, headers=headers)
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def test_open311_refuses_a_nul_in_its_own_format(harness: Harness) -> None:
    r = await harness.client.get("/open311/v2/requests.json?service_code=a%00")
    assert r.status_code == 400
    assert r.json()[0]["code"] == 400

    r = await harness.client.post(
        "/open311/v2/requests.json", data={"api_key": "bb_x\u0000", "service_code": "x"}
    )
    assert r.status_code == 400
    assert "NUL" in r.json()[0]["description"]


async def test_open311_xml_refuses_a_nul_in_xml(harness: Harness) -> None:
    r = await harness.client.get("/open311/v2/services/a%00.xml")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/xml")
    assert b"<errors><error><code>400</code>" in r.content
