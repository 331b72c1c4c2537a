"""Text no route accepts: the NUL character (U+0000), which PostgreSQL cannot store or compare.

Refused with 422 wherever it comes, on both databases alike: in the path or the query string
before anything else, and in a JSON or form body as the body is read (before it is parsed, as
a malformed body is). Photos and other bodies pass untouched.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import problems
from app.open311 import xml as open311_xml

# An escaped NUL in JSON: \u0000 not itself escaped (an even run of backslashes before it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
_FORM_NUL = b"%00"
_FORM = b"application/x-www-form-urlencoded"
OPEN311_PREFIX = "/open311/"
MESSAGE = "text may not contain the NUL character (U+0000)"


def _media_type(content_type: bytes) -> bytes:
    return content_type.split(b";")[0].strip().lower()


def _body_has_nul(media: bytes, body: bytes) -> bool:
    if media.endswith(b"json"):
        return _JSON_NUL.search(body) is not None
    return media == _FORM and _FORM_NUL in body


def _refusal(scope: Scope, where: str) -> Response:
    if scope["path"].startswith(OPEN311_PREFIX):  # the specification's errors there
        body = [{"code": 400, "description": f"{where}: {MESSAGE}"}]
        if scope["path"].endswith(".xml"):
            return open311_xml.response("errors", body, 400)
        return JSONResponse(body, 400)
    error = {"loc": [where], "msg": MESSAGE}
    return problems.problem(
        Request(scope), 422, "validation", MESSAGE, "Validation failed", errors=[error]
    )


class RefuseNul:
    """ASGI middleware refusing requests whose text holds a NUL (422 validation)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = unquote_to_bytes(scope.get("query_string", b""))
        if "\x00" in scope["path"] or b"\x00" in query:
            where = "path" if "\x00" in scope["path"] else "query"
            await _refusal(scope, where)(scope, receive, send)
            return
        media = _media_type(dict(scope["headers"]).get(b"content-type", b""))
        if not (media.endswith(b"json") or media == _FORM):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def checked_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and _body_has_nul(media, b"".join(chunks)):
                    raise HTTPException(422, f"body: {MESSAGE}")
            return message

        await self.app(scope, checked_receive, send)
