"""Opaque cursors and the list envelope every list endpoint answers."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from app import errors

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*position: Any) -> str:
    raw = json.dumps(list(position), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The position a cursor names; a cursor we did not make is a validation error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_cursor() from exc
    if not isinstance(position, list) or len(position) != arity:
        raise _bad_cursor()
    return position


def _bad_cursor() -> errors.ValidationFailed:
    msg = "cursor is not one this service issued"
    return errors.ValidationFailed(msg, errors=[{"loc": ["query", "cursor"], "msg": msg}])
