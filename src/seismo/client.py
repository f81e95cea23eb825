"""A small synchronous HTTP client for a running seismo server (used by the CLI).

Errors come back as `seismo.errors` exceptions carrying the server's `error` message, so
callers handle a remote server the same way as the in-process engine.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from seismo.errors import (
    InvalidInput,
    NotFound,
    Overloaded,
    SeismoError,
    StorageUnavailable,
    TooLarge,
)

DEFAULT_URL = "http://127.0.0.1:8765"
_BY_STATUS: dict[int, type[SeismoError]] = {
    400: InvalidInput, 404: NotFound, 413: TooLarge, 507: StorageUnavailable,
}


class Client:
    """Talks to `/api/v1` of one server; use as a context manager or call `close()`."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + "/api/v1", headers=headers,
                                  timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def push(self, series: list[dict[str, Any]] | None = None,
             samples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Store columnar `series` and/or row `samples`; return accepted/rejected/errors."""
        body: dict[str, Any] = {}
        if series is not None:
            body["series"] = series
        if samples is not None:
            body["samples"] = samples
        return self._call("POST", "/ingest", json=body)

    def query(self, selector: str, window: str = "5m") -> list[dict[str, Any]]:
        """Latest value and window stats of every series the selector matches."""
        reply = self._call("GET", "/query", params={"selector": selector, "window": window})
        series: list[dict[str, Any]] = reply["series"]
        return series

    def query_range(self, selector: str, *, start: str | None = None, end: str | None = None,
                    step: str | None = None, agg: str = "avg",
                    group_by: list[str] | None = None) -> dict[str, Any]:
        """Step buckets of the selected series: `{"series": [...], "step_ms": n}`."""
        params = {"selector": selector, "start": start, "end": end, "step": step, "agg": agg,
                  "group_by": ",".join(group_by) if group_by else None}
        return self._call("GET", "/query_range",
                          params={k: v for k, v in params.items() if v is not None})

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SeismoError(f"cannot reach seismo at {self.url}: {exc}") from None
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if response.is_success and isinstance(reply, dict):
            return reply
        message = reply.get("error") if isinstance(reply, dict) else None
        if not message:
            message = response.text.strip()[:200] or response.reason_phrase
        text = f"HTTP {response.status_code}: {message}"
        if response.status_code == 429:
            retry = response.headers.get("Retry-After", "1")
            raise Overloaded(text, retry_after_s=float(retry) if retry.isdigit() else 1.0)
        error = _BY_STATUS.get(response.status_code, SeismoError)
        field = reply.get("field") if isinstance(reply, dict) else None
        raise error(text, field=field)
