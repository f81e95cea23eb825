"""Access control: API tokens (hashed in the state db), roles, per-token ingest limits.

Enforcement lives at the edge (`api/access.py`); this package is plain Python.
"""

from seismo.auth.policy import is_loopback, open_bind_problem, requires_tokens
from seismo.auth.ratelimit import RateLimiter
from seismo.auth.roles import ANONYMOUS, Principal, Role
from seismo.auth.tokens import TokenRecord, TokenStore, has_active_tokens

__all__ = [
    "ANONYMOUS", "Principal", "RateLimiter", "Role", "TokenRecord", "TokenStore",
    "has_active_tokens", "is_loopback", "open_bind_problem", "requires_tokens",
]
