"""Accept-Language: zh-CN gives Chinese problem titles and details and Chinese labels; English
stays the default; codes, slugs and field names never change with the language."""

from __future__ import annotations

from tests.conftest import Harness
from tests.factories import login_headers, problem_type

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


async def test_problems_in_chinese_keep_their_type_and_status(harness: Harness) -> None:
    headers = await login_headers(harness, "admin")

    zh = await harness.client.get("/api/v1/incidents/abc", headers={**headers, **ZH})
    en = await harness.client.get("/api/v1/incidents/abc", headers=headers)

    assert zh.status_code == en.status_code == 404
    assert zh.json()["type"] == en.json()["type"] == problem_type("not-found")
    assert (zh.json()["title"], zh.json()["detail"]) == ("未找到", "没有案件 'abc'")
    assert (en.json()["title"], en.json()["detail"]) == ("Not found", "no incident 'abc'")
    assert zh.headers["content-language"] == "zh-CN"
    assert en.headers["content-language"] == "en"


async def test_a_validation_problem_in_chinese(harness: Harness) -> None:
    headers = {**await login_headers(harness, "admin"), **ZH}

    r = await harness.client.post("/api/v1/agencies", json={"code": "police"}, headers=headers)

    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "校验未通过"
    assert body["detail"] == "body.name：必填字段"
    assert {"loc": ["body", "name"], "msg": "必填字段"} in body["errors"]


async def test_credentials_refused_in_chinese(harness: Harness) -> None:
    r = await harness.client.get("/api/v1/users/me", headers=ZH)
    assert r.status_code == 401
    assert r.json()["title"] == "需要登录认证"
    assert "X-API-Key" in r.json()["detail"] and "令牌" in r.json()["detail"]


async def test_other_languages_get_english(harness: Harness) -> None:
    for language in ("de-DE", "fr;q=0.9, en;q=0.5", "zh-CN;q=0, en", "*"):
        r = await harness.client.get("/api/v1/users/me", headers={"Accept-Language": language})
        assert r.json()["title"] == "Authentication required", language


async def test_labels_in_chinese_and_english(harness: Harness) -> None:
    zh = (await harness.client.get("/api/v1/labels", headers=ZH)).json()
    en = (await harness.client.get("/api/v1/labels")).json()

    assert zh["language"] == "zh-CN" and en["language"] == "en"
    assert zh["statuses"]["dispatched"] == "已派遣" and en["statuses"]["dispatched"] == "Dispatched"
    assert zh["statuses"]["closed"] == "已结案"
    assert zh["actions"]["acknowledge"] == "受理" and zh["actions"]["revisit"] == "回头看"
    assert zh["roles"]["grid_worker"] == "网格员" and en["roles"]["grid_worker"] == "Grid worker"
    assert zh["outcomes"]["penalized"] == "已处罚"
    assert zh["categories"]["open_burning"] == "露天焚烧"
    assert en["categories"]["open_burning"] == "Open burning"
    for group in ("statuses", "actions", "roles", "outcomes", "categories"):
        assert set(zh[group]) == set(en[group]), group  # the same codes in every language
