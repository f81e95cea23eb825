"""The one place where seismo's errors become HTTP responses."""

from __future__ import annotations

import errno
import logging
import math
import sqlite3

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from seismo.errors import Overloaded, SeismoError, StorageUnavailable

log = logging.getLogger(__name__)
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


def no_space(exc: BaseException) -> StorageUnavailable | None:
    """The 507 for an error that means the disk (or quota) is full, else None."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return StorageUnavailable(f"disk full: {exc.strerror or exc}")
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
        return StorageUnavailable(f"disk full: cannot write seismo's state: {exc}")
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(SeismoError)
    async def seismo_error(request: Request, exc: SeismoError) -> JSONResponse:
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    async def disk_error(request: Request, exc: Exception) -> JSONResponse:
        full = no_space(exc)
        if full is None:
            return await internal(request, exc)
        # A full disk is not a bug: 507, like a WAL write it refuses.
        log.error("%s %s: %s", request.method, request.url.path, full.message)
        return JSONResponse(full.to_dict(), status_code=full.status)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; see the server log"}, status_code=500)

    @app.exception_handler(msgspec.ValidationError)
    async def bad_shape(request: Request, exc: msgspec.ValidationError) -> JSONResponse:
        text = str(exc)
        body = {"error": f"malformed body: {text}"}
        if " - at `$." in text:
            body["field"] = text.rsplit(" - at `$.", 1)[1].rstrip("`")
        return JSONResponse(body, status_code=400)

    @app.exception_handler(msgspec.DecodeError)
    async def bad_json(request: Request, exc: msgspec.DecodeError) -> JSONResponse:
        return JSONResponse({"error": f"malformed body: {exc}"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
             "reason": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": None, "reason": "invalid request"}
        return JSONResponse(
            {"error": f"{first['field']}: {first['reason']}", "field": first["field"],
             "errors": problems},
            status_code=400,
        )
