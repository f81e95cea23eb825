"""Sending one notification to one channel: HTTP POST, SMTP, or a log line.

The outbox calls `deliver` for each attempt and reads the `Result`: sent, worth retrying, or
not. HTTP goes through one shared `httpx.Client` (no redirects followed, no proxy taken from
the environment); email through `smtplib`. Both connect only where the `OutboundPolicy`
allows (seismo.outbound): a refused destination is dead at once, never retried. Error
texts never hold a secret: every secret value of the channel becomes `<secret>` here.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import httpx

from seismo.notify.channel import clip
from seismo.notify.config import PLACEHOLDER, ChannelSpec
from seismo.notify.email import Email
from seismo.notify.log import Log
from seismo.notify.message import Notification
from seismo.outbound import OutboundPolicy, OutboundRefused, http_transport

LOGGER = logging.getLogger("seismo.notify")
RESPONSE_EXCERPT = 1024
"""Bytes of a failed response's body read, to quote in the error."""
ERROR_LIMIT = 300
"""Characters kept of an error text."""


def _user_agent() -> str:
    try:
        return f"seismo/{metadata.version('seismo')}"
    except metadata.PackageNotFoundError:
        return "seismo"


USER_AGENT = _user_agent()

DEFAULT_POLICY = OutboundPolicy()
_clients: dict[OutboundPolicy, httpx.Client] = {}
_client_lock = threading.Lock()


@dataclass(frozen=True)
class Result:
    """How one attempt went: `ok`, else whether a `retry` may succeed; `error` says why."""

    ok: bool
    retry: bool
    status: int | None = None
    """HTTP status or SMTP reply code, when the receiver answered."""
    error: str = ""


def http_client(policy: OutboundPolicy = DEFAULT_POLICY) -> httpx.Client:
    """The client every HTTP channel shares (one connection pool for all threads)."""
    with _client_lock:
        client = _clients.get(policy)
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=32, max_keepalive_connections=8)
            client = _clients[policy] = httpx.Client(
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
                transport=http_transport(policy, limits),
            )
        return client


def close() -> None:
    """Close the shared HTTP clients (at shutdown); the next delivery opens a new one."""
    with _client_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def deliver(spec: ChannelSpec, notification: Notification,
            policy: OutboundPolicy = DEFAULT_POLICY) -> Result:
    """Send `notification` over `spec`'s channel, where `policy` allows; never raises."""
    unset = spec.unset_secrets
    if unset:
        return Result(False, False, None, f"{', '.join(unset)} still reads {PLACEHOLDER!r}: "
                                          "the secret was never set")
    if not spec.send_resolved and notification.resolved:
        if not notification.firing:
            return Result(True, False, None,
                          "not sent: every alert is resolved and send_resolved is false")
        notification = replace(notification, alerts=notification.firing)
    try:
        if spec.type == "log":
            Log(spec.name).write(notification)
            result = Result(True, False)
        elif spec.type == "email":
            result = _send_mail(spec, notification, policy)
        else:
            result = _post(spec, notification, policy)
    except OutboundRefused as exc:
        LOGGER.warning("channel %s: %s", spec.name, scrub(exc.message, spec))
        result = Result(False, False, None, exc.message)
    except Exception as exc:  # a bug here must cost one attempt, not the outbox worker
        LOGGER.error("delivery to channel %s failed unexpectedly: %s", spec.name,
                     scrub(repr(exc), spec))
        result = Result(False, True, None, f"unexpected {type(exc).__name__}: {exc}")
    return replace(result, error=scrub(result.error, spec))


def scrub(text: str, spec: ChannelSpec) -> str:
    """`text` with every secret of `spec` replaced by `<secret>`, on one line, clipped."""
    return clip(" ".join(redact(text, spec).split()), ERROR_LIMIT)


def redact(text: str, spec: ChannelSpec) -> str:
    """`text` with every secret of `spec` replaced by `<secret>`."""
    values = set(spec.secrets.values())
    if "url" in spec.secrets:  # a Slack or Teams URL's credential is its path, a webhook's
        parts = urlsplit(spec.secrets["url"])  # its query
        values.update(part for part in (parts.path, parts.query) if len(part) > 1)
    for value in sorted(values, key=len, reverse=True):
        if value and value != PLACEHOLDER:
            text = text.replace(value, PLACEHOLDER)
    return text


class _RedactRequestLog(logging.Filter):
    """httpx logs each request's URL at INFO, and a Slack or Teams URL is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        spec: ChannelSpec | None = getattr(_sending, "spec", None)
        if spec is not None and spec.secrets:
            record.msg = redact(record.getMessage(), spec)
            record.args = None
        return True


_sending = threading.local()
"""The spec this thread is sending with, for `_RedactRequestLog`."""
logging.getLogger("httpx").addFilter(_RedactRequestLog())


def _post(spec: ChannelSpec, notification: Notification, policy: OutboundPolicy) -> Result:
    url = spec.url
    if url is None:
        return Result(False, False, None, f"a {spec.type} channel has no URL")
    channel = spec.channel()
    payload = channel.payload(notification)
    headers = {**spec.headers(), "Content-Type": payload.content_type}
    _sending.spec = spec
    try:
        with http_client(policy).stream(
            "POST", url, content=payload.body, headers=headers, auth=spec.basic_auth(),
            timeout=spec.timeout_s,
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return Result(True, False, status)
            excerpt = _excerpt(response)
    except httpx.TimeoutException:
        return Result(False, True, None, f"no answer within {spec.timeout_s:g} s")
    except httpx.UnsupportedProtocol as exc:
        return Result(False, False, None, str(exc))
    except httpx.TransportError as exc:
        return Result(False, True, None, f"{type(exc).__name__}: {exc}")
    finally:
        _sending.spec = None
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if 300 <= status < 400:
        return Result(False, False, status, f"{reason}: redirects are not followed")
    return Result(False, channel.should_retry(status), status,
                  f"{reason}: {excerpt}" if excerpt else reason)


def _excerpt(response: httpx.Response) -> str:
    """The start of a response body, as text (a receiver's own error message)."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT:
            break
    return data[:RESPONSE_EXCERPT].decode("utf-8", "replace").strip()


class _SMTP(smtplib.SMTP):
    """SMTP that connects only where the policy allows (to the address it checked)."""

    def __init__(self, policy: OutboundPolicy, *args: Any, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.policy.connect(host, port, timeout)


class _SMTPSSL(smtplib.SMTP_SSL):
    """SMTP over TLS from the start, connecting only where the policy allows."""

    def __init__(self, policy: OutboundPolicy, *args: Any, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = self.policy.connect(host, port, timeout)
        return self.context.wrap_socket(sock, server_hostname=host)


def _send_mail(spec: ChannelSpec, notification: Notification,
               policy: OutboundPolicy) -> Result:
    options = spec.options
    email = spec.channel()
    assert isinstance(email, Email)
    message = email.message(notification)
    helo = socket.gethostname() or "seismo"
    smtp: smtplib.SMTP | None = None
    try:
        if options["ssl"]:
            smtp = _SMTPSSL(policy, options["smtp_host"], options["smtp_port"],
                                    local_hostname=helo, timeout=spec.timeout_s,
                                    context=ssl.create_default_context())
        else:
            smtp = _SMTP(policy, options["smtp_host"], options["smtp_port"],
                                local_hostname=helo, timeout=spec.timeout_s)
        if options["starttls"]:
            smtp.starttls(context=ssl.create_default_context())
        if "username" in options:
            smtp.login(options["username"], spec.secrets["password"])
        refused = smtp.send_message(message, from_addr=options["from"],
                                    to_addrs=list(options["to"]))
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        listed = "; ".join(f"{addr} {code} {text.decode('utf-8', 'replace')}"
                           for addr, (code, text) in exc.recipients.items())
        return Result(False, any(email.should_retry(c) for c in codes), min(codes),
                      f"every recipient refused: {listed}")
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return Result(False, email.should_retry(exc.smtp_code), exc.smtp_code,
                      f"SMTP {exc.smtp_code}: {text}")
    except smtplib.SMTPServerDisconnected as exc:
        return Result(False, True, None, f"SMTP server disconnected: {exc}")
    except smtplib.SMTPException as exc:  # STARTTLS or AUTH not offered: a setup problem
        return Result(False, False, None, f"SMTP: {exc}")
    except ssl.SSLCertVerificationError as exc:
        return Result(False, False, None, f"TLS certificate rejected: {exc.verify_message}")
    except TimeoutError:
        return Result(False, True, None, f"no answer within {spec.timeout_s:g} s")
    except OSError as exc:
        return Result(False, True, None, f"{type(exc).__name__}: {exc}")
    finally:
        if smtp is not None:
            _quit(smtp)
    if refused:
        listed = "; ".join(f"{addr} {code}" for addr, (code, _) in refused.items())
        return Result(True, False, 250, f"sent, but refused for: {listed}")
    return Result(True, False, 250)


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session; the message is already accepted, so a failed QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
