"""Who may do what: the three roles, ordered, and the principal a request runs as.

viewer < operator < admin; a role may do everything the roles below it may. The route
that needs each role is in `api/access.py` (one table).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from seismo.errors import InvalidInput


class Role(enum.IntEnum):
    """viewer reads; operator also writes data and handles alerts; admin also configures."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: object, field: str = "role") -> Role:
        """The role named `text` (viewer, operator, admin), or InvalidInput naming `field`.

        >>> Role.parse("operator") > Role.VIEWER
        True
        """
        if isinstance(text, str):
            try:
                return cls[text.strip().upper()]
            except KeyError:
                pass
        names = ", ".join(str(role) for role in cls)
        raise InvalidInput(f"role must be one of {names}, not {text!r}", field=field)


@dataclass(frozen=True)
class Principal:
    """Whom a request runs as: a token's name and role (token_id None: no token)."""

    name: str
    role: Role
    token_id: int | None = None
    ingest_samples_per_s: float | None = None  # None: the server's default limit

    def may(self, needed: Role) -> bool:
        """Whether this principal's role is `needed` or above."""
        return self.role >= needed


# Who a request runs as while no token exists (auth off, loopback only): anyone, as admin.
ANONYMOUS = Principal("anonymous", Role.ADMIN)
