"""Admin routes for API tokens: `/api/v1/tokens` list, create (secret shown once), revoke.

The same TokenStore as `seismo token`; access control (admin only) is in `access.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from seismo.api.body import read_body
from seismo.auth import TokenStore

# A row id of the state database: SQLite's INTEGER is 64-bit, and a larger number in the
# path overflowed in sqlite3 (a 500); the route refuses it first, 400 naming the field.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

MAX_BODY_BYTES = 64 * 1024


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str
    ingest_samples_per_s: float | None = None


_decoder = msgspec.json.Decoder(TokenIn)


def _tokens(request: Request) -> TokenStore:
    tokens: TokenStore = request.app.state.engine.tokens
    return tokens


def build_token_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tokens"])

    @router.get("/tokens")
    def list_tokens(request: Request) -> dict[str, Any]:
        """Every token, revoked ones too: id, name, role, times; never a secret."""
        return {"tokens": [record.to_dict() for record in _tokens(request).list()]}

    @router.post(
        "/tokens", status_code=201,
        openapi_extra={"requestBody": {"content": {"application/json": {"example": {
            "name": "ci", "role": "operator"}}}, "required": True}},
    )
    async def create_token(request: Request) -> JSONResponse:
        """Create a token; the reply holds its `secret`, which is never shown again."""
        spec = _decoder.decode(await read_body(request, MAX_BODY_BYTES))
        record, secret = await run_in_threadpool(
            _tokens(request).create, spec.name, spec.role, spec.ingest_samples_per_s)
        return JSONResponse({**record.to_dict(), "secret": secret}, status_code=201,
                            headers={"Cache-Control": "no-store"})

    @router.delete("/tokens/{token_id}")
    def revoke_token(request: Request, token_id: RowId) -> dict[str, Any]:
        """Revoke a token now (other processes see it within a second); 404 if unknown."""
        return _tokens(request).revoke(token_id).to_dict()

    return router
