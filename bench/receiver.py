"""The webhook receiver: a tiny HTTP/1.1 server that answers 200 and notes what arrived.

Run as `python -m bench.receiver PORT`. Every POST is recorded as (receipt time, webhook-id);
one in `SAMPLE_EVERY` is also kept whole (headers and body) so that the bench can check its
Standard Webhooks signature afterwards. `GET /_bench/count` answers how many arrived,
`GET /_bench/received` everything noted. asyncio on uvloop with httptools' parser, like the
load generator: it must cost the machine next to nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, cast

import httptools

SAMPLE_EVERY = 20
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_KEPT_HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}


class Received:
    """Everything that arrived, in arrival order."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.ids: list[str] = []
        self.samples: list[dict[str, Any]] = []

    def add(self, headers: dict[str, str], body: bytes) -> None:
        at = time.time()
        self.times.append(at)
        self.ids.append(headers.get("webhook-id", ""))
        if len(self.ids) % SAMPLE_EVERY == 1:
            body_text = body.decode("utf-8", "replace")
            self.samples.append({"at": at, "headers": headers, "body": body_text})

    def document(self) -> dict[str, Any]:
        return {"times": self.times, "ids": self.ids, "samples": self.samples}


class _Connection(asyncio.Protocol):
    def __init__(self, received: Received) -> None:
        self.received = received
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in _KEPT_HEADERS:
            self.headers[key] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            self.received.add(self.headers, bytes(self.body))
            self.transport.write(_OK)
            return
        if self.url == b"/_bench/count":
            answer = str(len(self.received.ids)).encode()
        else:
            answer = json.dumps(self.received.document()).encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )


async def serve(port: int) -> None:
    received = Received()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(received), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    import uvloop

    try:
        uvloop.run(serve(int(argv[0])))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
