"""Delivery over real loopback HTTP receivers and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from seismo.notify import AlertmanagerForward, Slack, Teams, Webhook
from seismo.notify.config import ChannelSpec, parse_channel
from seismo.notify.delivery import USER_AGENT, deliver
from seismo.outbound import OutboundPolicy
from tests.notify.samples import cpu_alert, cpu_notification, sample_notification


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server recording every POST; `answer` gives (status, body) for each."""

    port: int = 0
    answer: Callable[[Request], tuple[int, bytes]] = lambda request: (200, b"ok")
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body)
                receiver.requests.append(request)
                status, reply = receiver.answer(request)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests]


def free_port() -> int:
    """A loopback port nothing listens on (for now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def webhook(url: str, **extra: Any) -> ChannelSpec:
    return parse_channel({"name": "hook", "type": "webhook", "url": url, **extra})


def test_webhook_posts_alertmanager_v4_json(receiver: Receiver) -> None:
    notification = cpu_notification()
    result = deliver(webhook(receiver.url(), bearer_token="tok-31f"), notification)
    assert (result.ok, result.status, result.error) == (True, 200, "")
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.body == Webhook("hook").payload(notification).body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer tok-31f"
    assert request.headers["user-agent"] == USER_AGENT


def test_webhook_headers_basic_auth_and_max_alerts(receiver: Receiver) -> None:
    notification = cpu_notification()
    spec = webhook(receiver.url(), headers={"X-Scope-OrgID": "infra", "X-Api-Key": "k-9"},
                   basic_auth={"username": "u", "password": "p"}, max_alerts=1)
    assert deliver(spec, notification).ok
    (request,) = receiver.requests
    assert request.headers["x-scope-orgid"] == "infra"
    assert request.headers["x-api-key"] == "k-9"
    assert request.headers["authorization"] == "Basic dTpw"  # base64("u:p")
    body = json.loads(request.body)
    assert len(body["alerts"]) == 1
    assert body["truncatedAlerts"] == 1


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_slack_and_teams_post_their_documents(receiver: Receiver, kind: str) -> None:
    notification = cpu_notification()
    spec = parse_channel({"name": "chat", "type": kind, "url": receiver.url("/services/T/B/X")})
    assert deliver(spec, notification).ok
    (request,) = receiver.requests
    maker = Slack("chat") if kind == "slack" else Teams("chat")
    assert request.path == "/services/T/B/X"
    assert request.body == maker.payload(notification).body
    assert request.headers["content-type"] == "application/json"


def test_alertmanager_posts_to_api_v2_alerts(receiver: Receiver) -> None:
    notification = cpu_notification()
    spec = parse_channel({"name": "am", "type": "alertmanager", "url": receiver.url("/am/"),
                          "bearer_token": "am-tok"})
    assert deliver(spec, notification).ok
    (request,) = receiver.requests
    assert request.path == "/am/api/v2/alerts"
    assert request.body == AlertmanagerForward("am").payload(notification).body
    assert request.headers["authorization"] == "Bearer am-tok"


@pytest.mark.parametrize(("status", "retry"), [
    (500, True), (503, True), (429, True), (408, True), (400, False), (404, False),
    (301, False),
])
def test_http_status_decides_retry(receiver: Receiver, status: int, retry: bool) -> None:
    receiver.answer = lambda request: (status, b"receiver says no")
    result = deliver(webhook(receiver.url()), cpu_notification())
    assert (result.ok, result.retry, result.status) == (False, retry, status)
    assert result.error.startswith(f"HTTP {status}")
    assert len(receiver.requests) == 1  # a redirect is not followed
    if status != 301:
        assert result.error.endswith("receiver says no")


def test_connection_refused_is_retried() -> None:
    result = deliver(webhook(f"http://127.0.0.1:{free_port()}/hook"), cpu_notification())
    assert (result.ok, result.retry, result.status) == (False, True, None)
    assert "ConnectError" in result.error


def test_timeout_is_retried() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        started = time.monotonic()
        result = deliver(webhook(url, timeout_s=0.3), cpu_notification())
    assert time.monotonic() - started < 3
    assert (result.ok, result.retry) == (False, True)
    assert result.error == "no answer within 0.3 s"


def test_error_texts_never_hold_secrets(receiver: Receiver) -> None:
    def echo(request: Request) -> tuple[int, bytes]:  # a receiver that quotes what it got
        return 401, f"bad credentials: {request.headers.get('authorization')}".encode()

    receiver.answer = echo
    result = deliver(webhook(receiver.url(), bearer_token="tok-8d2e4b"), cpu_notification())
    assert result.error == "HTTP 401 Unauthorized: bad credentials: Bearer <secret>"

    def quote_path(request: Request) -> tuple[int, bytes]:
        return 404, f"no such hook {request.path}".encode()

    receiver.answer = quote_path
    spec = parse_channel({"name": "s", "type": "slack",
                          "url": receiver.url("/services/T1/B1/sekrit77")})
    result = deliver(spec, cpu_notification())
    assert "sekrit77" not in result.error
    assert result.error.endswith("no such hook <secret>")


def test_an_unset_placeholder_secret_is_never_sent(receiver: Receiver) -> None:
    result = deliver(webhook(receiver.url(), bearer_token="<secret>"), cpu_notification())
    assert (result.ok, result.retry) == (False, False)
    assert "never set" in result.error
    assert receiver.requests == []


def test_send_resolved_false_drops_resolved_alerts(receiver: Receiver) -> None:
    spec = webhook(receiver.url(), send_resolved=False)
    result = deliver(spec, cpu_notification(cpu_alert("web-1", resolved=True)))
    assert result.ok and "send_resolved" in result.error
    assert receiver.requests == []
    mixed = cpu_notification(cpu_alert("web-1", resolved=True), cpu_alert("web-2"))
    assert deliver(spec, mixed).ok
    (body,) = receiver.bodies()
    assert [a["labels"]["host"] for a in body["alerts"]] == ["web-2"]


def test_log_channel_writes_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    spec = parse_channel({"name": "audit", "type": "log"})
    with caplog.at_level(logging.WARNING, logger="seismo.alerts"):
        result = deliver(spec, sample_notification())
    assert result.ok
    (record,) = [r for r in caplog.records if r.name == "seismo.alerts"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "[FIRING:1] BenchHigh (127.0.0.1:44745 exp critical) reason=first channel=audit {")
    assert '"groupKey":"{}:{alertname=\\"BenchHigh\\"}"' in record.getMessage()


# -- email over a real SMTP server --------------------------------------------------------

class Mailbox:
    """An aiosmtpd handler that keeps every message; `reply` answers DATA."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.reply = "250 OK"
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return self.reply

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> Any:
        self.logins.append((data.login, data.password))
        smtp = pytest.importorskip("aiosmtpd.smtp")
        return smtp.AuthResult(success=data.password == b"pw-right", handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port, AUTH offered without TLS."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    box = Mailbox()
    controller = controller_module.Controller(
        box, hostname="127.0.0.1", port=free_port(), authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield box, controller.port
    controller.stop()


def mail(port: int, **extra: Any) -> ChannelSpec:
    return parse_channel({"name": "mail", "type": "email", "smtp_host": "127.0.0.1",
                          "smtp_port": port, "starttls": False, "timeout_s": 3,
                          "from": "seismo@example.com",
                          "to": ["ops@example.com", "dev@example.com"], **extra})


def test_email_arrives_with_plain_and_html_parts(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    result = deliver(mail(port), cpu_notification())
    assert (result.ok, result.status) == (True, 250)
    (mail_from, rcpt_tos, message) = box.messages[0]
    assert mail_from == "seismo@example.com"
    assert rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert message["Subject"] == "[FIRING:2] HighCPU (infra)"
    assert message["From"] == "seismo@example.com"
    assert message["To"] == "ops@example.com, dev@example.com"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert "CPU 95% on web-1" in plain.get_content()
    assert "<h2" in html.get_content() and "CPU 95% on web-2" in html.get_content()
    assert box.logins == []  # no username: no AUTH


def test_email_login_when_username_set(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    assert deliver(mail(port, username="seismo", password="pw-right"), cpu_notification()).ok
    assert box.logins == [(b"seismo", b"pw-right")]
    assert len(box.messages) == 1
    refused = deliver(mail(port, username="seismo", password="pw-wrong"), cpu_notification())
    assert (refused.ok, refused.retry, refused.status) == (False, False, 535)
    assert "pw-wrong" not in refused.error
    assert len(box.messages) == 1


@pytest.mark.parametrize(("reply", "retry"), [("451 try again later", True),
                                              ("554 rejected", False)])
def test_smtp_reply_codes_decide_retry(smtp: tuple[Mailbox, int], reply: str,
                                       retry: bool) -> None:
    box, port = smtp
    box.reply = reply
    result = deliver(mail(port), cpu_notification())
    assert (result.ok, result.retry, result.status) == (False, retry, int(reply[:3]))
    assert result.error == f"SMTP {reply[:3]}: {reply[4:]}"


def test_starttls_not_offered_is_a_setup_error(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    result = deliver(mail(port, starttls=True), cpu_notification())
    assert (result.ok, result.retry) == (False, False)
    assert "STARTTLS" in result.error
    assert box.messages == []  # never falls back to plain text


def test_smtp_connection_refused_is_retried() -> None:
    result = deliver(mail(free_port()), cpu_notification())
    assert (result.ok, result.retry, result.status) == (False, True, None)
    assert "ConnectionRefusedError" in result.error


# The SSRF guard (seismo.outbound): refused destinations are dead at once, never contacted.

@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every outgoing TCP connection attempted, recorded and failed."""
    attempts: list[object] = []

    def record(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", record)
    monkeypatch.setattr(socket.socket, "connect", record)
    return attempts


@pytest.mark.parametrize("spec", [
    webhook("http://169.254.169.254/latest/meta-data/"),
    parse_channel({"name": "chat", "type": "slack",
                   "url": "https://[fd00:ec2::254]/services/T/B/X"}),
    parse_channel({"name": "am", "type": "alertmanager", "url": "http://[fe80::1]:9093"}),
    parse_channel({"name": "gce", "type": "teams",
                   "url": "http://metadata.google.internal/computeMetadata/v1/"}),
    parse_channel({"name": "mail", "type": "email", "smtp_host": "169.254.169.254",
                   "from": "seismo@example.com", "to": ["ops@example.com"]}),
], ids=["webhook", "slack", "alertmanager", "teams-by-name", "email"])
def test_metadata_and_link_local_destinations_are_refused(
        spec: ChannelSpec, no_connections: list[object]) -> None:
    result = deliver(spec, cpu_notification())
    assert (result.ok, result.retry, result.status) == (False, False, None)
    assert result.error.startswith("refused to connect to ")
    assert "metadata" in result.error
    assert "/services/T/B/X" not in result.error
    assert no_connections == []


def test_the_resolved_address_is_checked_not_the_name(
        monkeypatch: pytest.MonkeyPatch, no_connections: list[object]) -> None:
    def rebound(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    result = deliver(webhook("http://hooks.example.com/hook"), cpu_notification())
    assert (result.ok, result.retry) == (False, False)
    assert result.error.startswith(
        "refused to connect to hooks.example.com (169.254.169.254): 169.254.169.254 is a "
        "link-local or cloud metadata address (169.254.0.0/16 in security.outbound_deny)")
    assert no_connections == []


def test_deny_and_allow_lists(receiver: Receiver) -> None:
    denied = OutboundPolicy.of(deny=["127.0.0.0/8"])
    result = deliver(webhook(receiver.url()), cpu_notification(), denied)
    assert (result.ok, result.retry) == (False, False)
    assert "127.0.0.1 is denied (127.0.0.0/8 in security.outbound_deny)" in result.error
    assert receiver.requests == []
    allowed = OutboundPolicy.of(deny=["127.0.0.0/8"], allow=["127.0.0.1/32"])
    assert deliver(webhook(receiver.url()), cpu_notification(), allowed).ok
    assert len(receiver.requests) == 1


def test_an_allow_listed_smtp_host_passes(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    denied = OutboundPolicy.of(deny=["127.0.0.1"])
    assert "127.0.0.1 is denied" in deliver(mail(port), cpu_notification(), denied).error
    allowed = OutboundPolicy.of(deny=["127.0.0.1"], allow=["127.0.0.0/8"])
    assert deliver(mail(port), cpu_notification(), allowed).ok
    assert len(box.messages) == 1
