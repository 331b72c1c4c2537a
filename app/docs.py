"""The interactive docs at /docs, served whole by the service: Swagger UI's assets are vendored
in app/static/swagger-ui (version and licence in its README.md), never fetched from a CDN, so
the docs work on an intranet. Its Authorize button logs in with OAuth2's password flow against
POST /api/v1/auth/token."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(__file__).parent / "static" / "swagger-ui"
_OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install(app: FastAPI) -> None:
    """Serve /docs and its assets (the app is made with docs_url=None and redoc_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="swagger-ui")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=_OAUTH2_REDIRECT_URL,
            swagger_ui_parameters={"persistAuthorization": True, "tryItOutEnabled": False},
        )

    @app.get(_OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
