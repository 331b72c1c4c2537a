"""The ASGI entry point for servers: `uvicorn --factory app.asgi:app_from_environment`."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


def app_from_environment() -> FastAPI:
    """The app as configured by BURNBAN_* variables and .env (each worker process calls this).

    What the imports and the app built lives as long as the process, so it is moved out of the
    cyclic garbage collector's way (`gc.freeze`): a full collection traversed ~200 000 such
    objects, ~70 ms during which the worker answered nothing, a few times a minute under load.
    """
    app = create_app(Settings())
    gc.freeze()
    return app
