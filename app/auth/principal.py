"""Who is calling: a user with a role, or an API key with scopes; and who may call what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app import errors


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


@dataclass(frozen=True)
class Permit:
    """Who may call a route: users with one of `roles`, API keys with `scope`."""

    roles: tuple[str, ...]
    scope: str | None = None

    def check(self, principal: Principal) -> Principal:
        """The principal, if it may; else Forbidden."""
        if principal.has_role(*self.roles) or (
            self.scope is not None and principal.has_scope(self.scope)
        ):
            return principal
        raise errors.Forbidden("your role or key does not allow this")
