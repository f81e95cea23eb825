"""When auth must be on: a server reachable beyond loopback never runs open.

With no token, everything is open to anyone who can connect; that is only allowed on a
loopback address, unless the operator says `--insecure`.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("127.0.0.2"), is_loopback("[::1]"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    host = host.strip()
    if host.lower() == "localhost":
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def requires_tokens(host: str, insecure: bool) -> bool:
    """Whether auth stays on even with no active token (non-loopback, not --insecure)."""
    return not insecure and not is_loopback(host)


def open_bind_problem(host: str, insecure: bool, has_tokens: bool) -> str | None:
    """Why `seismo serve` must not start on `host`, or None when it may."""
    if has_tokens or not requires_tokens(host, insecure):
        return None
    return (f"refusing to listen on {host} without access tokens: anyone who can reach it "
            "could read and change everything; create one first (seismo token create "
            "--role admin --name NAME) or pass --insecure")
