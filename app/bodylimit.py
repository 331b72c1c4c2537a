"""Routes that refuse request bodies over a size, before reading them whole."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message

from app import errors


class BodyLimitedRoute(APIRoute):
    """An APIRoute refusing bodies over `max_bytes` with 413 payload-too-large.

    A declared Content-Length over the limit is refused before reading; otherwise the bytes
    are counted as they arrive. (Starlette's own limiter answers plain text, not our
    problem+json, when the declared length is too large.)
    """

    max_bytes: ClassVar[int]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        max_bytes = self.max_bytes

        async def limited(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise errors.PayloadTooLarge(f"the request body is over {max_bytes} bytes")
            received = 0
            receive = request.receive

            async def counting_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > max_bytes:
                        # FastAPI passes HTTPException through its body parsing untouched;
                        # our handler renders it as payload-too-large.
                        raise HTTPException(413, f"the request body is over {max_bytes} bytes")
                return message

            return await handler(Request(request.scope, counting_receive))

        return limited


def body_limited_route(max_bytes: int) -> type[BodyLimitedRoute]:
    """A BodyLimitedRoute class for `max_bytes`."""
    return type("BodyLimitedRoute", (BodyLimitedRoute,), {"max_bytes": max_bytes})
