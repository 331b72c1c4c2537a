"""/docs works without internet: Swagger UI's assets come from the service itself, and its
Authorize button logs in with a username and password (OAuth2 password flow)."""

from __future__ import annotations

import re

from app.docs import ASSETS_DIR
from tests.conftest import Harness
from tests.factories import PASSWORD, make_user


async def test_the_docs_page_loads_everything_from_the_service(harness: Harness) -> None:
    r = await harness.client.get("/docs")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert urls and all(url.startswith("/docs/assets/") for url in urls), urls
    assert "http://" not in r.text and "https://" not in r.text
    for url in urls:
        asset = await harness.client.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    bundle = await harness.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


async def test_the_vendored_assets_record_their_version_and_licence() -> None:
    readme = (ASSETS_DIR / "README.md").read_text()
    assert "swagger-ui-dist" in readme and "5.36.0" in readme and "Apache-2.0" in readme
    assert "Apache License" in (ASSETS_DIR / "LICENSE").read_text()


async def test_redoc_which_needs_a_cdn_is_not_served(harness: Harness) -> None:
    assert (await harness.client.get("/redoc")).status_code == 404


async def test_authorize_logs_in_with_a_username_and_password(harness: Harness) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    password_flows = [s["flows"]["password"] for s in schemes.values() if s["type"] == "oauth2"]
    assert password_flows == [{"scopes": {}, "tokenUrl": "/api/v1/auth/token"}]
    assert any(s["type"] == "apiKey" and s["name"] == "X-API-Key" for s in schemes.values())

    # What Swagger UI sends when Authorize is used, then with the token it was given.
    user = await make_user(harness, "admin", username="docs-admin")
    r = await harness.client.post(
        password_flows[0]["tokenUrl"],
        data={"grant_type": "password", "username": user.username, "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = await harness.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "docs-admin"
