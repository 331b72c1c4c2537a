"""Where a webhook may be sent: http(s) to public addresses only, checked again at send time.

A target is resolved when it is subscribed and again before every send, and the request goes
to the address that was checked (the host name travels in Host and SNI), so a name that
re-resolves to an internal address after the check (DNS rebinding) reaches nothing inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be called: wrong scheme, no host, unresolvable or not public."""


@dataclass(frozen=True)
class Pinned:
    """A request target fixed to one checked address."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any] = field(default_factory=dict)


def is_public(address: IPAddress) -> bool:
    """Whether the address is on the public internet (not loopback, private, link-local,
    reserved, shared, multicast or unspecified; IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise TargetRefused("the URL is not valid") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("the URL must be http or https")
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    return parsed


async def resolve(url: httpx.URL) -> list[IPAddress]:
    """Every address the URL's host resolves to (the resolver runs in a thread)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, url.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {url.host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"the host {url.host!r} does not resolve")
    return addresses


async def check(url: str, allow_private: bool) -> tuple[httpx.URL, list[IPAddress]]:
    """The parsed URL and its addresses if it may be called; TargetRefused says why not."""
    parsed = parse(url)
    addresses = await resolve(parsed)
    if not allow_private:
        # One internal address among several is enough to refuse: the client picks any.
        for address in addresses:
            if not is_public(address):
                raise TargetRefused(
                    f"the host {parsed.host!r} resolves to a non-public address ({address}); "
                    "the operator may allow private targets with "
                    "BURNBAN_WEBHOOK_ALLOW_PRIVATE=true"
                )
    return parsed, addresses


async def pin(url: str, allow_private: bool) -> Pinned:
    """Check the URL now and fix the request to the first address that passed."""
    parsed, addresses = await check(url, allow_private)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.host
    return Pinned(
        url=parsed.copy_with(host=str(addresses[0])),
        headers={"host": host_header},
        extensions=extensions,
    )
