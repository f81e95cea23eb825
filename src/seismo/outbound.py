"""Where seismo may connect to: the SSRF guard for channels (HTTP, SMTP) and scrape targets.

A destination's host is resolved when a connection is opened, every address it resolves
to is checked, and the connection goes to the address that was checked, so a name that
re-resolves to the cloud metadata service between check and connect (DNS rebinding) is
refused too. Link-local and metadata addresses are refused unless allow-listed
(`security.outbound_allow`); loopback and private ranges are allowed (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from seismo.errors import SeismoError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY: tuple[str, ...] = (
    "169.254.0.0/16",  # IPv4 link-local, AWS/GCP/Azure metadata at 169.254.169.254
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
)
DENIED_NAMES = frozenset({"metadata.google.internal", "metadata.google.internal."})
"""Metadata host names refused whatever they resolve to."""


class OutboundRefused(SeismoError):
    """A destination resolves to an address seismo may not connect to; retrying won't help."""

    status = 400


def parse_networks(values: Iterable[str], field: str) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ValueError names `field` and the value."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not an IP address or CIDR "
                             "(like 10.0.0.0/8 or fd00::/8)") from None
    return tuple(networks)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound connections may reach: `allow` wins over `deny`.

    >>> policy = OutboundPolicy.of(deny=["10.1.0.0/16"], allow=["169.254.169.254"])
    >>> policy.refusal("169.254.169.254"), policy.refusal("10.1.2.3") is not None
    (None, True)
    """

    deny: tuple[Network, ...] = parse_networks(DEFAULT_DENY, "deny")
    allow: tuple[Network, ...] = ()

    @classmethod
    def of(cls, deny: Iterable[str] = (), allow: Iterable[str] = ()) -> OutboundPolicy:
        """The defaults plus `deny`, with `allow` excepted (settings `security.outbound_*`)."""
        return cls(parse_networks([*DEFAULT_DENY, *deny], "security.outbound_deny"),
                   parse_networks(allow, "security.outbound_allow"))

    def refusal(self, address: str) -> str | None:
        """Why `address` (an IP) may not be reached, or None when it may."""
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return None
        for network in self.deny:
            if ip in network:
                what = "a link-local or cloud metadata address" \
                    if network.with_prefixlen in DEFAULT_DENY else "denied"
                return f"{ip} is {what} ({network.with_prefixlen} in security.outbound_deny)"
        return None

    def resolve(self, host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        """Every address `host` resolves to, each checked; `OutboundRefused` for any denied."""
        name = host.strip("[]").lower()
        if name in DENIED_NAMES:
            raise OutboundRefused(f"refused to connect to {host}: a cloud metadata host "
                                  "(docs/security.md#outbound-connections)")
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc.strerror}") from exc
        addresses: list[tuple[socket.AddressFamily, str]] = []
        for family, _, _, _, sockaddr in infos:
            address = str(sockaddr[0])
            reason = self.refusal(address)
            if reason is not None:
                shown = host if host == address else f"{host} ({address})"
                raise OutboundRefused(f"refused to connect to {shown}: {reason}; see "
                                      "docs/security.md#outbound-connections")
            addresses.append((family, address))
        return addresses

    def connect(self, host: str, port: int, timeout: float | None,
                source_address: tuple[str, int] | None = None) -> socket.socket:
        """A TCP socket to a checked address of `host` (as `socket.create_connection`)."""
        error: OSError | None = None
        for family, address in self.resolve(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                if source_address is not None:
                    sock.bind(source_address)
                sock.connect((address, port))
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"{host} resolves to no address")


ALLOW_ALL = OutboundPolicy(deny=())
"""No address refused (for tests of other things)."""


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                    ) -> httpcore.NetworkStream:
        # Connect to the very addresses checked: a second lookup could answer otherwise.
        addresses = self.policy.resolve(host, port)
        for i, (_, address) in enumerate(addresses):
            try:
                return super().connect_tcp(address, port, timeout, local_address,
                                           socket_options)
            except httpcore.ConnectError:
                if i == len(addresses) - 1:
                    raise
        raise httpcore.ConnectError(f"{host} resolves to no address")


def http_transport(policy: OutboundPolicy, limits: httpx.Limits = httpx.Limits()
                   ) -> httpx.HTTPTransport:
    """An httpx transport whose every connection (redirects included) passes `policy`."""
    transport = httpx.HTTPTransport(limits=limits)
    # httpx has no parameter for httpcore's network backend, the hook for connecting.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(policy),
    )
    return transport
