"""Routes of the dashboard: its page at `/`, its files under `/ui/`, and `whoami`.

The files are public (they hold no data); everything the page shows comes from the API,
which checks the token as for any client. `whoami` tells the page which controls to
offer (viewers get read-only ones).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from seismo.api.access import principal_of
from seismo.auth import ANONYMOUS
from seismo.ui import INDEX, STATIC_DIR

UI_PREFIX = "/ui"
# The page changes with the package; revalidate rather than serve a stale app.
_NO_STALE = {"Cache-Control": "no-cache"}


class _Static(StaticFiles):
    """StaticFiles with `no-cache` (revalidate with ETag) and explicit module types."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Any,
                      status_code: int = 200) -> Any:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_NO_STALE)
        name = str(full_path)
        if name.endswith(".js"):  # some systems' mime tables lack .js or call it text/plain
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        elif name.endswith(".css"):
            response.headers["content-type"] = "text/css; charset=utf-8"
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the dashboard: `/` and `/ui/...` (static), `GET /api/v1/whoami`."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(INDEX, media_type="text/html; charset=utf-8", headers=_NO_STALE)

    @router.get("/api/v1/whoami", tags=["auth"])
    def whoami(request: Request) -> dict[str, Any]:
        """Whom the request runs as: token name, role, and whether auth is on."""
        principal = principal_of(request) or ANONYMOUS
        return {"name": principal.name, "role": str(principal.role),
                "auth": principal is not ANONYMOUS}

    app.include_router(router)
    app.mount(UI_PREFIX, _Static(directory=STATIC_DIR), name="ui")
