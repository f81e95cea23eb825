"""REST routes of the alerting stage: alerts, rules, silences, channels, routes, outbox.

Thin: decode the JSON body, call `AlertService`, shape the reply. Who acknowledges,
resolves or silences is the caller's token name unless the body says `by`. Access (viewer
reads, operator acks/resolves/silences, admin changes rules, channels and routes) is in
`access.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from seismo.alerting.service import AlertService
from seismo.api.access import principal_of
from seismo.api.body import read_body
from seismo.errors import InvalidInput
from seismo.query.timeparse import parse_time_ms

# A row id of the state database: SQLite's INTEGER is 64-bit, and a larger number in the
# path overflowed in sqlite3 (a 500); the route refuses it first, 400 naming the field.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

MAX_BODY_BYTES = 256 * 1024
CUSTOM_KEYS = ("name", "labels", "annotations", "severity", "ends_at")


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.engine.alerting
    if not request.app.state.engine.settings.alerting.enabled:
        raise InvalidInput("alerting is disabled (alerting.enabled: false)", field="alerting")
    return service


async def _object(request: Request) -> dict[str, Any]:
    body = msgspec.json.decode(await read_body(request, MAX_BODY_BYTES))
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    return body


def _by(request: Request, body: Mapping[str, Any]) -> tuple[str, str]:
    """Who does it (body `by`, else the token's name) and the comment."""
    principal = principal_of(request)
    by = body.get("by", principal.name if principal else "anonymous")
    comment = body.get("comment", "")
    if not isinstance(by, str):
        raise InvalidInput("by must be a string", field="by")
    if not isinstance(comment, str):
        raise InvalidInput("comment must be a string", field="comment")
    return by, comment


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for text in values for v in text.split(",") if v]


def build_alert_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.get("/alerts")
    def list_alerts(
        request: Request,
        state: Annotated[list[str] | None, Query(description="pending, firing, acknowledged, "
                                                 "resolved (repeat or comma-separate)")] = None,
        severity: Annotated[list[str] | None, Query()] = None,
        rule: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        """Alerts, most recently changed first, with their silence and inhibition marks."""
        alerts = _service(request).list_alerts(state=_split(state), severity=_split(severity),
                                               rule=rule, limit=limit)
        return {"alerts": alerts}

    @router.post("/alerts", status_code=201)
    async def raise_alert(request: Request) -> dict[str, Any]:
        """Raise a custom alert: `{name, labels?, annotations?, severity?, ends_at?}`.
        Posting the same name and labels again refreshes it instead of adding one."""
        service = _service(request)
        body = await _object(request)
        unknown = sorted(set(body) - set(CUSTOM_KEYS))
        if unknown:
            raise InvalidInput(f"unknown key {unknown[0]!r}; an alert has "
                               f"{', '.join(CUSTOM_KEYS)}", field=unknown[0])
        if not isinstance(body.get("name"), str):
            raise InvalidInput("name is required", field="name")
        for key in ("labels", "annotations"):
            if not isinstance(body.get(key, {}), dict):
                raise InvalidInput(f"{key} must be an object", field=key)
        ends_at = body.get("ends_at")
        ends_at_ms = None if ends_at is None else parse_time_ms(
            str(ends_at), now_ms=service.clock(), default=0, field="ends_at")
        return await run_in_threadpool(
            service.raise_alert, body["name"], labels=body.get("labels", {}),
            annotations=body.get("annotations", {}), severity=body.get("severity", "high"),
            ends_at_ms=ends_at_ms)

    @router.get("/alerts/{alert_id}")
    def get_alert(request: Request, alert_id: str) -> dict[str, Any]:
        """One alert and every transition of it, oldest first."""
        return _service(request).get_alert(alert_id)

    @router.post("/alerts/{alert_id}/ack")
    async def acknowledge(request: Request, alert_id: str) -> dict[str, Any]:
        """Acknowledge a firing alert: `{comment?, by?}`; stops repeats and escalation."""
        by, comment = _by(request, await _object_or_empty(request))
        return await run_in_threadpool(_service(request).acknowledge, alert_id, by, comment)

    @router.post("/alerts/{alert_id}/resolve")
    async def resolve(request: Request, alert_id: str) -> dict[str, Any]:
        """Resolve an active alert by hand: `{comment?, by?}`."""
        by, comment = _by(request, await _object_or_empty(request))
        return await run_in_threadpool(_service(request).resolve, alert_id, by, comment)

    @router.get("/incidents")
    def incidents(request: Request, status: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Alerts that fired together on shared labels, grouped into incidents."""
        service = _service(request)
        with service.lock:
            return {"incidents": service.incidents.list(status=status, limit=limit)}

    @router.get("/alert_groups")
    def alert_groups(request: Request) -> dict[str, Any]:
        """The alert manager's groups: route, channels, alerts, last notification."""
        service = _service(request)
        with service.lock:
            return {"groups": service.manager.groups()}

    # -- rules --------------------------------------------------------------------------

    @router.get("/rules")
    def list_rules(request: Request) -> dict[str, Any]:
        """Every rule (from seismo.yaml, rule files and the API) and the rule files' state."""
        service = _service(request)
        return {"rules": [r.to_dict() for r in service.rules()], "files": service.rule_files()}

    @router.post("/rules", status_code=201)
    async def create_rule(request: Request) -> dict[str, Any]:
        """Add a rule (same fields as in seismo.yaml); a bad one is refused with the reason."""
        body = await _object(request)
        return (await run_in_threadpool(_service(request).put_rule, body)).to_dict()

    @router.get("/rules/{name}")
    def get_rule(request: Request, name: str) -> dict[str, Any]:
        return _service(request).get_rule(name).to_dict()

    @router.put("/rules/{name}")
    async def replace_rule(request: Request, name: str) -> dict[str, Any]:
        """Replace a rule made over the API; its alerts resolve if the expression changed."""
        body = await _object(request)
        body.setdefault("name", name)
        return (await run_in_threadpool(_service(request).put_rule, body, name=name)).to_dict()

    @router.delete("/rules/{name}")
    async def delete_rule(request: Request, name: str) -> dict[str, Any]:
        """Delete a rule made over the API; its active alerts resolve."""
        await run_in_threadpool(_service(request).delete_rule, name)
        return {"deleted": name}

    # -- silences -----------------------------------------------------------------------

    @router.get("/silences")
    def list_silences(request: Request, state: str | None = None) -> dict[str, Any]:
        """Silences (pending, active, expired)."""
        return {"silences": _service(request).list_silences(state)}

    @router.post("/silences", status_code=201)
    async def add_silence(request: Request) -> dict[str, Any]:
        """`{matchers: {alertname: "HighCPU"}, ends_at, starts_at?, comment}`."""
        body = await _object(request)
        by, _ = _by(request, {"by": body.pop("by")} if "by" in body else {})
        return await run_in_threadpool(_service(request).add_silence, body, by)

    @router.delete("/silences/{silence_id}")
    async def expire_silence(request: Request, silence_id: str) -> dict[str, Any]:
        """Expire a silence now (it stays listed as expired)."""
        return await run_in_threadpool(_service(request).expire_silence, silence_id)

    # -- channels, routes, outbox -------------------------------------------------------

    @router.get("/channels")
    def list_channels(request: Request) -> dict[str, Any]:
        """Channels; secrets (tokens, passwords, Slack/Teams URLs) are never shown."""
        return {"channels": _service(request).list_channels()}

    @router.post("/channels", status_code=201)
    async def create_channel(request: Request) -> dict[str, Any]:
        body = await _object(request)
        return await run_in_threadpool(_service(request).put_channel, body)

    @router.put("/channels/{name}")
    async def replace_channel(request: Request, name: str) -> dict[str, Any]:
        """Replace a channel; a secret sent back as "<secret>" keeps its stored value."""
        body = await _object(request)
        body.setdefault("name", name)
        return await run_in_threadpool(_service(request).put_channel, body, name=name)

    @router.delete("/channels/{name}")
    async def delete_channel(request: Request, name: str) -> dict[str, Any]:
        await run_in_threadpool(_service(request).delete_channel, name)
        return {"deleted": name}

    @router.get("/routes")
    def list_routes(request: Request) -> dict[str, Any]:
        """Routes in the order they are tried: seismo.yaml's, then the API's."""
        return {"routes": _service(request).list_routes()}

    @router.put("/routes")
    async def put_routes(request: Request) -> dict[str, Any]:
        """Replace the routes made over the API: `{routes: [...]}`."""
        body = await _object(request)
        return {"routes": await run_in_threadpool(_service(request).put_routes,
                                                  body.get("routes"))}

    @router.get("/outbox")
    def outbox(request: Request, state: str | None = None, channel: str | None = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
        """Notifications queued, sent or dead-lettered, newest first; and counts."""
        service = _service(request)
        if state not in (None, "pending", "sent", "dead"):
            raise InvalidInput("state must be pending, sent or dead", field="state")
        return {"notifications": service.outbox.list(state=state, channel=channel, limit=limit),
                "counts": service.outbox.stats()}

    @router.post("/outbox/{notification_id}/retry")
    async def retry(request: Request, notification_id: RowId) -> dict[str, Any]:
        """Send a dead-lettered notification again."""
        return await run_in_threadpool(_service(request).outbox.retry, notification_id)

    return router


async def _object_or_empty(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_BODY_BYTES)
    if not body.strip():
        return {}
    decoded = msgspec.json.decode(body)
    if not isinstance(decoded, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    return decoded

