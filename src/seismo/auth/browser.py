"""Web pages calling a server that has no token: refuse other sites and DNS rebinding.

With no token, seismo on loopback answers everyone who can connect as admin, and a web
page open in the user's browser can connect too: a form or `fetch` from another site
(cross-site request forgery), or a site whose name is made to resolve to 127.0.0.1 (DNS
rebinding), which may then also read the replies. Tokens are not cookies, so neither works
once auth is on; while it is off, a request must name a loopback host (when the server
listens on one) and, if a browser sent an `Origin`, come from the server itself or one of
`cors_origins`.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from seismo.auth.policy import is_loopback

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
HINT = ("with no token seismo only answers pages it serves itself; create a token "
        "(seismo token create) to call it from elsewhere")


def _split_host(host: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) as (name, port); a bad port reads as None."""
    parts = urlsplit("//" + host)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or ""), port


def browser_problem(host: str | None, origin: str | None, *, loopback_only: bool,
                    cors_origins: Collection[str] = ()) -> str | None:
    """Why a request without a token must be refused, or None.

    `host` and `origin` are the request's `Host` and `Origin` headers; `loopback_only`:
    the server listens on a loopback address, so every honest `Host` names one.

    >>> browser_problem("127.0.0.1:8765", "http://127.0.0.1:8765", loopback_only=True)
    >>> browser_problem("evil.example:8765", None, loopback_only=True)[:45]
    'Host evil.example:8765 is not a loopback name'
    """
    if loopback_only and host is not None and not is_loopback(_split_host(host)[0]):
        return f"Host {host} is not a loopback name; {HINT}"
    if origin is None or origin in cors_origins:
        return None
    parts = urlsplit(origin)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    name, host_port = _split_host(host or "")
    same = parts.hostname is not None and parts.hostname == name and port == (
        host_port or _DEFAULT_PORTS.get(parts.scheme))
    if same:
        return None
    return f"Origin {origin[:100]} is another site; {HINT}"
