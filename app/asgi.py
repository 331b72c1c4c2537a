"""The ASGI entry point for servers: `uvicorn --factory app.asgi:app_from_environment`."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


def app_from_environment() -> FastAPI:
    """The app as configured by BURNBAN_* variables and .env (each worker process calls this)."""
    return create_app(Settings())
