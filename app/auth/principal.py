"""Who is calling: a user with a role, or an API key with scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "api_key"]
    id: str
    name: str
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    cell_code: str | None = None
    agency_code: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role == "admin"

    def has_role(self, *roles: str) -> bool:
        return self.kind == "user" and self.role in roles

    def has_scope(self, scope: str) -> bool:
        return self.kind == "api_key" and scope in self.scopes
