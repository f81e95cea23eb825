"""seismo's own exception hierarchy; `api/errors.py` maps it to HTTP in one place."""

from __future__ import annotations

from typing import Any


class SeismoError(Exception):
    """Base of every error seismo raises on purpose."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.detail)
        return body


class InvalidInput(SeismoError):
    """The request is malformed; nothing was changed."""

    status = 400


class Unauthorized(SeismoError):
    """No token, or one that is unknown, revoked or expired."""

    status = 401


class Forbidden(SeismoError):
    """The token is valid but its role may not do this."""

    status = 403


class NotFound(SeismoError):
    status = 404


class TooLarge(SeismoError):
    """Body or result larger than the configured limit."""

    status = 413


class Overloaded(SeismoError):
    """A bounded queue is full; the client should retry after `retry_after_s`."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageUnavailable(SeismoError):
    """The store cannot make data durable (disk full, I/O error)."""

    status = 507


class ConfigError(SeismoError):
    """A setting is unknown or has a bad value; start-up stops."""

    status = 500
