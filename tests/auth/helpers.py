"""Helpers for auth tests against real servers: tokens made in the data dir, WebSockets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from seismo.auth import TokenStore
from tests.server import ServerProcess

ROLES = ("viewer", "operator", "admin")


def make_tokens(data_dir: Path, prefix: str = "") -> dict[str, str]:
    """One token per role, created in the data dir as `seismo token create` would."""
    store = TokenStore(data_dir / "state.db")
    try:
        return {role: store.create(f"{prefix}{role}", role, ingest_samples_per_s=0)[1]
                for role in ROLES}
    finally:
        store.close()


def bearer(secret: str | None) -> dict[str, str]:
    return {} if secret is None else {"Authorization": f"Bearer {secret}"}


def ws_url(server: ServerProcess, path: str = "/api/v1/stream", query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}{path}" + (f"?{query}" if query else "")


def ws_close_code(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Connect and ping; the close code and reason, or (None, "") if the stream answered."""
    with connect(url, additional_headers=headers or {}, open_timeout=10, proxy=None) as ws:
        try:
            ws.send(json.dumps({"op": "ping"}))
            ws.recv(timeout=10)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, exc.rcvd.reason
        return None, ""


def ws_subscribe_stats(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Subscribe to `stats` and return the first message after the `subscribed` reply."""
    with connect(url, additional_headers=headers or {}, open_timeout=10, proxy=None) as ws:
        ws.send(json.dumps({"op": "subscribe", "topic": "stats"}))
        reply: dict[str, Any] = json.loads(ws.recv(timeout=10))
        return reply
