"""No secret leaks from a real server: not in its log, not in any reply.

`seismo serve --log-level debug` runs with channels full of secrets (a webhook's bearer
token, credential header and `?token=` in its URL, Slack and Teams webhook URLs, an SMTP
password, Alertmanager's bearer token) whose receivers all fail, and is called with its
own token in the query string (HTTP, SSE, WebSocket, 404s, 401s, errors). Afterwards
neither the server's log nor any reply holds any of the secret strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml
from websockets.sync.client import connect

from seismo.auth import TokenStore
from seismo.config import load_settings
from seismo.notify.config import merge_secrets, parse_channel
from seismo.notify.delivery import scrub
from tests.receiver import Receiver
from tests.server import ServerProcess, free_port, wait_for

HOOK_QUERY = "HookQuerySecret0123"
HOOK_BEARER = "HookBearerSecret0123"
HOOK_HEADER = "HookHeaderSecret0123"
HOOK_PASSWORD = "HookBasicPassword0123"
SLACK_PATH = "SlackPathSecret0123"
TEAMS_PATH = "TeamsPathSecret0123"
SMTP_PASSWORD = "SmtpPasswordSecret0123"
AM_BEARER = "AlertmanagerBearerSecret0123"
BAD_TOKEN = "smo_NotARealTokenButStillASecret0123456789abcd"
CHANNEL_SECRETS = (HOOK_QUERY, HOOK_BEARER, HOOK_HEADER, HOOK_PASSWORD, SLACK_PATH,
                   TEAMS_PATH, SMTP_PASSWORD, AM_BEARER)
CHANNELS = ("hook", "hook2", "slack", "teams", "mail", "am")


def write_config(path: Path, receiver: str, closed_port: int) -> Path:
    doc = {
        "channels": [
            {"name": "hook", "type": "webhook", "url": f"{receiver}/hook?code={HOOK_QUERY}",
             "bearer_token": HOOK_BEARER, "headers": {"X-Api-Key": HOOK_HEADER}},
            {"name": "hook2", "type": "webhook", "url": f"{receiver}/hook2",
             "basic_auth": {"username": "seismo", "password": HOOK_PASSWORD}},
            {"name": "slack", "type": "slack", "url": f"{receiver}/services/T1/B1/{SLACK_PATH}"},
            {"name": "teams", "type": "teams", "url": f"{receiver}/webhookb2/{TEAMS_PATH}"},
            {"name": "mail", "type": "email", "smtp_host": "127.0.0.1",
             "smtp_port": closed_port, "starttls": False, "username": "seismo",
             "password": SMTP_PASSWORD, "from": "seismo@example.com",
             "to": ["ops@example.com"]},
            {"name": "am", "type": "alertmanager", "url": receiver, "bearer_token": AM_BEARER},
        ],
        "routes": [{"match": {"team": "sec"}, "channels": list(CHANNELS),
                    "group_wait": "0s", "group_interval": "1s"}],
        "alerting": {"tick_s": 0.05, "outbox_backoff_max_s": 0.2},
    }
    path.write_text(yaml.safe_dump(doc))
    return path



def exercise(server: ServerProcess, admin: str) -> list[str]:
    """Call the server every way a secret might come back; the replies, as text."""
    q = f"token={admin}"
    replies: list[str] = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        def get(path: str, **kwargs: Any) -> httpx.Response:
            reply = client.get(path, **kwargs)
            # The request's own URL is left out: it holds the token on purpose.
            replies.append(f"{reply.status_code} {reply.headers} {reply.text}")
            return reply

        raised = client.post(f"/api/v1/alerts?{q}", json={
            "name": "LeakCheck", "labels": {"team": "sec"}, "severity": "critical"})
        assert raised.status_code == 201, raised.text

        def failed_everywhere() -> bool:
            rows = client.get(f"/api/v1/outbox?{q}").json()
            text = json.dumps(rows)
            return all(f'"{name}"' in text for name in CHANNELS) and text.count(
                '"last_error": ""') == 0 and "attempts\": 0" not in text

        wait_for(failed_everywhere)
        for path in ("/api/v1/channels", "/api/v1/outbox", "/api/v1/alerts",
                     "/api/v1/alert_groups", "/api/v1/routes", "/metrics", "/api/v1/whoami",
                     "/api/v1/no-such-route", "/api/v1/query_range?query=(",
                     "/api/v1/health"):
            sep = "&" if "?" in path else "?"
            get(f"{path}{sep}{q}")
        for name in CHANNELS:
            get(f"/api/v1/outbox?channel={name}&{q}")
        assert get(f"/api/v1/channels?token={BAD_TOKEN}").status_code == 401
        assert get("/api/v1/channels", headers={
            "Authorization": f"Bearer {BAD_TOKEN}"}).status_code == 401
        # A channel update that sends `<secret>` back keeps the stored secrets, and the
        # reply shows none.
        made = client.post(f"/api/v1/channels?{q}", json={
            "name": "apihook", "type": "webhook", "url": f"{server.url}/x?code={HOOK_QUERY}",
            "bearer_token": HOOK_BEARER})
        replies.append(f"POST {made.status_code} {made.text}")
        assert made.status_code == 201, made.text
        listed = client.get(f"/api/v1/channels?{q}").json()
        hook = next(c for c in listed["channels"] if c["name"] == "apihook")
        put = client.put(f"/api/v1/channels/apihook?{q}", json={
            k: v for k, v in hook.items() if k not in ("source", "status", "stats")})
        replies.append(f"PUT {put.status_code} {put.text}")
        assert put.status_code == 200, put.text
        with client.stream("GET", f"/api/v1/stream/sse?topic=stats&{q}") as sse:
            assert sse.status_code == 200
            replies.append(next(sse.iter_text()))
        mcp = client.post(f"/mcp?{q}", headers={"Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                              "name": "get_active_alerts", "arguments": {}}})
        replies.append(f"mcp {mcp.status_code} {mcp.text}")
        assert mcp.status_code == 200 and "LeakCheck" in mcp.text, mcp.text
    ws = f"ws://127.0.0.1:{server.port}/api/v1/stream"
    with connect(f"{ws}?{q}", open_timeout=10, proxy=None) as conn:
        conn.send(json.dumps({"op": "ping"}))
        replies.append(str(conn.recv(timeout=10)))
    with connect(f"{ws}?token={BAD_TOKEN}", open_timeout=10, proxy=None) as conn:
        try:
            conn.recv(timeout=10)
        except Exception as exc:  # closed with 4401
            replies.append(repr(exc))
    return replies


def test_no_secret_in_log_or_replies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = TokenStore(data / "state.db")
    try:
        admin = store.create("admin", "admin")[1]
    finally:
        store.close()
    with Receiver(status=500) as receiver:
        config = write_config(tmp_path / "seismo.yaml", receiver.url, free_port())
        server = ServerProcess(data, "--no-collector", "--config", str(config),
                               "--log-level", "debug",
                               env={"SEISMO_DETECT__ENABLED": "false"}).start()
        try:
            replies = exercise(server, admin)
            received = list(receiver.requests)
        finally:
            server.stop()
    # The channels really sent their secrets, so the check below is not vacuous.
    sent = " ".join(f"{r.path} {r.headers}" for r in received)
    for secret in (HOOK_QUERY, HOOK_BEARER, HOOK_HEADER, SLACK_PATH, TEAMS_PATH, AM_BEARER):
        assert secret in sent, f"{secret} was never sent: {sent[:500]}"
    log = server.log.read_text()
    assert "LeakCheck" in log or "notification" in log, log[-2000:]
    text = "\n".join(replies)
    leaks = [f"{secret} in the server log: {_around(log, secret)}"
             for secret in (*CHANNEL_SECRETS, admin, BAD_TOKEN) if secret in log]
    leaks += [f"{secret} in a reply: {_around(text, secret)}"
              for secret in (*CHANNEL_SECRETS, admin, BAD_TOKEN) if secret in text]
    assert not leaks, "\n\n".join(leaks)


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 300):at + 100]


def test_a_webhook_url_with_a_query_is_a_secret() -> None:
    """Finding: a webhook URL's query (Google Chat's `?key=&token=`, Azure's `?code=`) was
    shown by `GET /api/v1/channels` and could reach error texts."""
    url = "https://chat.example.com/v1/spaces/A/messages?key=K3y0123&token=T0k3n0123"
    spec = parse_channel({"name": "chat", "type": "webhook", "url": url})
    shown = spec.public()
    assert shown["url"] == "https://chat.example.com/<secret>"
    assert spec.url == url
    kept = merge_secrets(parse_channel({"name": "chat", "type": "webhook",
                                        "url": shown["url"]}), spec)
    assert kept.url == url
    error = scrub(f"POST {url} failed; retried key=K3y0123&token=T0k3n0123", spec)
    assert "K3y0123" not in error and "T0k3n0123" not in error, error
    plain = parse_channel({"name": "hook", "type": "webhook", "url": "https://h.example.com/x"})
    assert plain.public()["url"] == "https://h.example.com/x"


def test_the_mqtt_password_is_hidden_in_the_settings(tmp_path: Path) -> None:
    """Finding: `mqtt.password` was a plain string, shown by any repr or dump of the
    settings (a traceback with locals, a debug print)."""
    config = tmp_path / "seismo.yaml"
    config.write_text(yaml.safe_dump({"mqtt": {"username": "u", "password": "MqttSecret0123"}}))
    settings = load_settings(config, {"data_dir": tmp_path}, environ={})
    assert settings.mqtt.password.get_secret_value() == "MqttSecret0123"
    for shown in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert "MqttSecret0123" not in shown
