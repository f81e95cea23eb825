"""Channel configuration: the `channels:` list of seismo.yaml and the JSON of `/api/v1/channels`.

`parse_channel` checks one channel document field by field and returns a `ChannelSpec`, which
keeps secrets (tokens, passwords, Slack and Teams webhook URLs, webhook URLs with a query)
apart from the rest so that `public()` can show everything else. Secrets are write-only:
they read back as `<secret>`, and `merge_secrets` keeps the stored value when an update
sends `<secret>` back unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from seismo.errors import InvalidInput
from seismo.notify.alertmanager import AlertmanagerForward
from seismo.notify.channel import Channel
from seismo.notify.email import Email
from seismo.notify.log import Log
from seismo.notify.slack import Slack
from seismo.notify.teams import Teams
from seismo.notify.webhook import Webhook

PLACEHOLDER = "<secret>"
"""What a secret reads back as; sent back unchanged in an update, it keeps the stored value."""

TYPES = ("webhook", "slack", "teams", "email", "alertmanager", "log")
COMMON_KEYS = ("name", "type", "max_per_minute", "send_resolved")
TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "webhook": ("url", "headers", "bearer_token", "basic_auth", "max_alerts", "timeout_s"),
    "slack": ("url", "max_alerts", "timeout_s"),
    "teams": ("url", "max_alerts", "timeout_s"),
    "email": ("smtp_host", "smtp_port", "starttls", "ssl", "username", "password", "from", "to",
              "max_alerts", "timeout_s"),
    "alertmanager": ("url", "bearer_token", "timeout_s"),
    "log": (),
}
"""The keys each type takes besides `COMMON_KEYS`, in the order `public()` lists them."""

DEFAULT_MAX_ALERTS = {"webhook": 0, "slack": 10, "teams": 10, "email": 50}
DEFAULT_TIMEOUT_S = {"email": 10.0}
"""Per type; every other type waits `HTTP_TIMEOUT_S`."""
HTTP_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 120.0
ALERTMANAGER_PATH = "/api/v2/alerts"

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}\Z")
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]{1,253}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|session|signature", re.I)
_RESERVED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "host", "content-type", "content-length",
     "transfer-encoding", "connection"}
)


def _bad(path: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{path}: {reason}", field=path)


def is_placeholder(key: str, value: str) -> bool:
    """Whether a secret's value is what `public()` showed rather than a new value."""
    return value == PLACEHOLDER or (key == "url" and value.endswith("/" + PLACEHOLDER))


def masked_url(url: str) -> str:
    """A secret URL as users see it: scheme and host, then `/<secret>`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{PLACEHOLDER}"


@dataclass(frozen=True)
class ChannelSpec:
    """One configured channel: where it sends, how, and its write-only secrets.

    `secrets` maps a key to its value: `url` (slack, teams), `bearer_token`, `password`,
    `basic_auth.password` and `headers.<Name>` (webhook headers whose name says they hold
    a credential). It is left out of `repr()`, so logging a spec never shows them.
    """

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    max_per_minute: int = 0
    """Notifications per minute the alert manager may send here; 0 = unlimited."""
    send_resolved: bool = True

    @property
    def timeout_s(self) -> float:
        timeout: float = self.options.get("timeout_s", HTTP_TIMEOUT_S)
        return timeout

    @property
    def unset_secrets(self) -> tuple[str, ...]:
        """Secret keys that still hold `<secret>`: `merge_secrets` has not filled them."""
        return tuple(k for k, v in self.secrets.items() if is_placeholder(k, v))

    @property
    def url(self) -> str | None:
        """Where an HTTP channel POSTs (a secret for slack and teams, and for a webhook
        whose URL has a query); `None` otherwise."""
        if self.type in ("slack", "teams") or "url" in self.secrets:
            return self.secrets.get("url")
        if self.type == "alertmanager":
            return str(self.options["url"]).rstrip("/") + ALERTMANAGER_PATH
        if self.type == "webhook":
            return str(self.options["url"])
        return None

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers: the configured ones and the credentials, secrets included."""
        headers = dict(self.options.get("headers", {}))
        for key, value in self.secrets.items():
            if key.startswith("headers."):
                headers[key.removeprefix("headers.")] = value
        if "bearer_token" in self.secrets:
            headers["Authorization"] = f"Bearer {self.secrets['bearer_token']}"
        return headers

    def basic_auth(self) -> tuple[str, str] | None:
        """The webhook's basic-auth pair, when configured."""
        auth = self.options.get("basic_auth")
        if auth is None:
            return None
        return str(auth["username"]), self.secrets["basic_auth.password"]

    def public(self) -> dict[str, Any]:
        """The channel as the API shows it: every field, each secret as `<secret>`."""
        return self._render(lambda key, value: masked_url(value) if key == "url"
                            else PLACEHOLDER)

    def document(self) -> dict[str, Any]:
        """The channel as `parse_channel` reads it, secrets included: what to store."""
        return self._render(lambda key, value: value)

    def _render(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in TYPE_KEYS[self.type]:
            if key == "headers":
                headers = dict(self.options.get("headers", {}))
                headers.update(
                    (k.removeprefix("headers."), secret(k, v))
                    for k, v in self.secrets.items()
                    if k.startswith("headers.")
                )
                if headers:
                    doc["headers"] = headers
            elif key == "basic_auth":
                if "basic_auth" in self.options:
                    password = secret("basic_auth.password", self.secrets["basic_auth.password"])
                    doc["basic_auth"] = {**self.options["basic_auth"], "password": password}
            elif key in self.secrets:
                doc[key] = secret(key, self.secrets[key])
            elif key in self.options:
                value = self.options[key]
                doc[key] = list(value) if isinstance(value, list | tuple) else value
        doc["max_per_minute"] = self.max_per_minute
        doc["send_resolved"] = self.send_resolved
        return doc

    def channel(self) -> Channel:
        """The payload maker for this channel (`Webhook`, `Slack`, ..., `Log`)."""
        max_alerts = int(self.options.get("max_alerts", 0))
        if self.type == "webhook":
            return Webhook(self.name, max_alerts)
        if self.type == "slack":
            return Slack(self.name, max_alerts)
        if self.type == "teams":
            return Teams(self.name, max_alerts)
        if self.type == "email":
            return Email(self.name, self.options["from"], tuple(self.options["to"]), max_alerts)
        if self.type == "alertmanager":
            return AlertmanagerForward(self.name)
        return Log(self.name)

    def destination(self) -> str:
        """Where secrets go: a stored secret is only kept while this stays the same."""
        if self.type in ("slack", "teams") or "url" in self.secrets:
            return masked_url(self.secrets["url"])
        if self.type == "email":
            return f"{self.options['smtp_host']}:{self.options['smtp_port']}"
        return str(self.options.get("url", ""))


def parse_channel(doc: Mapping[str, Any], field: str = "channel") -> ChannelSpec:
    """A channel from its JSON/YAML document; `InvalidInput` names the first bad field."""
    if not isinstance(doc, Mapping):
        raise _bad(field, "a channel must be an object")
    name = _string(doc, "name", field, required=True)
    if not _NAME.match(name):
        raise _bad(f"{field}.name", "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    kind = _string(doc, "type", field, required=True)
    if kind not in TYPES:
        raise _bad(f"{field}.type", f"unknown channel type {kind!r} (one of {', '.join(TYPES)})")
    known = COMMON_KEYS + TYPE_KEYS[kind]
    for key in doc:
        if key not in known:
            listed = ", ".join(known)
            raise _bad(f"{field}.{key}", f"unknown key for a {kind} channel (known: {listed})")
    options: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    _PARSERS[kind](doc, field, options, secrets)
    if "max_alerts" in TYPE_KEYS[kind]:
        options["max_alerts"] = _integer(doc, "max_alerts", field, DEFAULT_MAX_ALERTS[kind], 0)
    if "timeout_s" in TYPE_KEYS[kind]:
        default = DEFAULT_TIMEOUT_S.get(kind, HTTP_TIMEOUT_S)
        options["timeout_s"] = _seconds(doc, "timeout_s", field, default)
    return ChannelSpec(
        name=name,
        type=kind,
        options=options,
        secrets=secrets,
        max_per_minute=_integer(doc, "max_per_minute", field, 0, 0),
        send_resolved=_boolean(doc, "send_resolved", field, True),
    )


def parse_channels(docs: Sequence[Mapping[str, Any]], field: str = "channels"
                   ) -> list[ChannelSpec]:
    """The `channels:` list of seismo.yaml, in order; names must be unique."""
    if not isinstance(docs, Sequence) or isinstance(docs, str):
        raise _bad(field, "must be a list of channels")
    specs: list[ChannelSpec] = []
    for i, doc in enumerate(docs):
        spec = parse_channel(doc, f"{field}[{i}]")
        if any(s.name == spec.name for s in specs):
            raise _bad(f"{field}[{i}].name", f"duplicate channel name {spec.name!r}")
        specs.append(spec)
    return specs


def merge_secrets(new: ChannelSpec, old: ChannelSpec, *, field: str = "channel") -> ChannelSpec:
    """`new` with each `<secret>` replaced by `old`'s value (an update that kept them).

    A stored secret is only kept while the destination (`url`, or `smtp_host` and
    `smtp_port`) stays the same, so it cannot be redirected to another server unseen.
    """
    unset = new.unset_secrets
    if not unset:
        return new
    secrets = dict(new.secrets)
    for key in unset:
        path = f"{field}.{key}"
        if new.type != old.type or key not in old.secrets:
            raise _bad(path, f"{PLACEHOLDER!r} keeps a stored secret, but there is none; "
                             "send the value")
        if key == "url" and new.secrets[key] != masked_url(old.secrets[key]):
            raise _bad(path, "the host changed: send the whole URL")
        if new.destination() != old.destination():
            raise _bad(path, f"{PLACEHOLDER!r} keeps a stored secret only while the destination "
                             "stays the same; send the secret again")
        secrets[key] = old.secrets[key]
    return replace(new, secrets=secrets)


# Field parsers: each reads one key of `doc`, `path` naming it in errors.

def _string(doc: Mapping[str, Any], key: str, field: str, *, required: bool = False,
            default: str | None = None, limit: int = 1024) -> str:
    path = f"{field}.{key}"
    if key not in doc or doc[key] is None:
        if required:
            raise _bad(path, "is required")
        return default or ""
    value = doc[key]
    if not isinstance(value, str):
        raise _bad(path, f"must be a string, not {type(value).__name__}")
    if not value:
        raise _bad(path, "must not be empty")
    if len(value) > limit:
        raise _bad(path, f"must be at most {limit} characters")
    if _CONTROL.search(value):
        raise _bad(path, "must not contain control characters or line breaks")
    return value


def _secret(doc: Mapping[str, Any], key: str, field: str, secrets: dict[str, str],
            name: str | None = None) -> None:
    if key in doc and doc[key] is not None:
        secrets[name or key] = _string(doc, key, field, limit=4096)


def _integer(doc: Mapping[str, Any], key: str, field: str, default: int, low: int,
             high: int = 1_000_000_000) -> int:
    path = f"{field}.{key}"
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise _bad(path, f"must be between {low} and {high}, not {value}")
    return value


def _seconds(doc: Mapping[str, Any], key: str, field: str, default: float) -> float:
    path = f"{field}.{key}"
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(path, f"must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise _bad(path, f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")
    return float(value)


def _boolean(doc: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"{field}.{key}", f"must be true or false, not {type(value).__name__}")
    return value


def _url(doc: Mapping[str, Any], key: str, field: str, *, secret: bool = False,
         base: bool = False) -> str:
    path = f"{field}.{key}"
    value = _string(doc, key, field, required=True, limit=4096)
    if any(c.isspace() for c in value):
        raise _bad(path, "must not contain white space")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        shown = "" if secret else f", not {parts.scheme or value!r}"
        raise _bad(path, f"must be an http or https URL{shown}")
    if not parts.hostname:
        raise _bad(path, "has no host")
    try:
        port = parts.port
    except ValueError:
        raise _bad(path, "has a bad port (must be 1 to 65535)") from None
    if port == 0:
        raise _bad(path, "has a bad port (must be 1 to 65535)")
    if parts.username is not None or parts.password is not None:
        hint = "; use basic_auth" if "basic_auth" in TYPE_KEYS.get(str(doc.get("type")), ()) else ""
        raise _bad(path, f"must not hold a user name or password{hint}")
    if base and (parts.query or parts.fragment):
        raise _bad(path, f"must be a base URL, without query or fragment ({ALERTMANAGER_PATH} "
                         "is added to it)")
    return value


def _mapping(doc: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _bad(f"{field}.{key}", f"must be an object, not {type(value).__name__}")
    return value


def _address(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _bad(path, f"must be an email address, not {type(value).__name__}")
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if _CONTROL.search(value) or not at or not local or not domain or len(value) > 320:
        raise _bad(path, f"must be an email address like ops@example.com, not {value[:80]!r}")
    return value


# One parser per type: fills `options` (shown by public()) and `secrets` (never shown).

def _webhook(doc: Mapping[str, Any], field: str, options: dict[str, Any],
             secrets: dict[str, str]) -> None:
    url = _url(doc, "url", field)
    if urlsplit(url).query or is_placeholder("url", url):
        secrets["url"] = url  # a query often holds a credential (?code=, ?key=&token=)
    else:
        options["url"] = url
    headers = _mapping(doc, "headers", field)
    if headers is not None:
        public: dict[str, str] = {}
        for name in headers:
            path = f"{field}.headers.{name}"
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                raise _bad(path, "is not a valid HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                raise _bad(path, "is set by seismo (use bearer_token or basic_auth for "
                                 "credentials)")
            text = _string(headers, name, f"{field}.headers", limit=8192)
            if _SECRET_HEADER.search(name):
                secrets[f"headers.{name}"] = text
            else:
                public[name] = text
        options["headers"] = public
    _secret(doc, "bearer_token", field, secrets)
    auth = _mapping(doc, "basic_auth", field)
    if auth is not None:
        if "bearer_token" in secrets:
            raise _bad(f"{field}.basic_auth", "use either bearer_token or basic_auth, not both")
        for key in auth:
            if key not in ("username", "password"):
                raise _bad(f"{field}.basic_auth.{key}",
                           "unknown key for basic_auth (known: username, password)")
        options["basic_auth"] = {
            "username": _string(auth, "username", f"{field}.basic_auth", required=True)
        }
        secrets["basic_auth.password"] = _string(auth, "password", f"{field}.basic_auth",
                                                 required=True, limit=4096)


def _secret_url(doc: Mapping[str, Any], field: str, options: dict[str, Any],
                secrets: dict[str, str]) -> None:
    secrets["url"] = _url(doc, "url", field, secret=True)


def _email(doc: Mapping[str, Any], field: str, options: dict[str, Any],
           secrets: dict[str, str]) -> None:
    host = _string(doc, "smtp_host", field, required=True, limit=253)
    if not _HOST.match(host):
        raise _bad(f"{field}.smtp_host", "must be a host name or an IP address")
    use_ssl = _boolean(doc, "ssl", field, False)
    starttls = _boolean(doc, "starttls", field, not use_ssl)
    if use_ssl and starttls:
        raise _bad(f"{field}.starttls", "starttls and ssl exclude each other: ssl is TLS from "
                                        "the start (port 465), starttls upgrades a plain "
                                        "connection (port 587)")
    options["smtp_host"] = host
    options["smtp_port"] = _integer(doc, "smtp_port", field, 465 if use_ssl else 587, 1, 65535)
    options["starttls"] = starttls
    options["ssl"] = use_ssl
    username = _string(doc, "username", field)
    _secret(doc, "password", field, secrets)
    if username:
        options["username"] = username
        if "password" not in secrets:
            raise _bad(f"{field}.password", "is required when username is set")
    elif "password" in secrets:
        raise _bad(f"{field}.username", "is required when password is set")
    options["from"] = _address(_string(doc, "from", field, required=True), f"{field}.from")
    to = doc.get("to")
    if not isinstance(to, list) or not to:
        raise _bad(f"{field}.to", "must be a non-empty list of email addresses")
    options["to"] = [_address(a, f"{field}.to[{i}]") for i, a in enumerate(to)]


def _alertmanager(doc: Mapping[str, Any], field: str, options: dict[str, Any],
                  secrets: dict[str, str]) -> None:
    options["url"] = _url(doc, "url", field, base=True)
    _secret(doc, "bearer_token", field, secrets)


def _log(doc: Mapping[str, Any], field: str, options: dict[str, Any],
         secrets: dict[str, str]) -> None:
    return None


_PARSERS = {
    "webhook": _webhook,
    "slack": _secret_url,
    "teams": _secret_url,
    "email": _email,
    "alertmanager": _alertmanager,
    "log": _log,
}
