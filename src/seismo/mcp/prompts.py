"""MCP resources (the rules as YAML, the SLO definitions, the models list) and the
`investigate_alert` prompt that walks an agent through an incident with seismo's tools."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from mcp.server.mcpserver.exceptions import ResourceError

from seismo.errors import SeismoError
from seismo.mcp.toolkit import Toolkit, error_text

SLO_FIELDS = ("name", "objective", "window", "sli", "description", "labels", "alerting",
              "source")

INVESTIGATE = """You are investigating seismo alert {alert_id}. Work through these steps
with the seismo tools, and keep each answer short.

1. Call explain_alert(alert_id="{alert_id}"). Note the rule, its expression, the
   alert's state and severity, when it fired, and the shape of the values around it
   (a spike, a drop, a level shift, a slow trend).
2. Check the context of that window: the anomalies and events explain_alert returned;
   if a deploy or config change came just before, say so. For more, call
   list_events(start=...) or list_anomalies(selector=...).
3. Look at related signals: get_active_alerts() for alerts firing together (same host,
   service or team), and query_range(...) on the neighbouring series (other hosts of the
   same metric, the error rate next to a latency) over the same window.
4. If an SLO is involved (label slo), call slo_status(name=...) for the remaining error
   budget and the burn rates; if a model is involved (label model), call
   ml_performance(model=...).
5. Conclude: what happened, since when, the likely cause with the evidence for it, and
   the impact. Propose the next action: acknowledge_alert with a comment while someone
   works on it, add_silence for planned work, resolve_alert when it is over, or a change
   to the rule if it fired wrongly. Do not act without the user's go-ahead.
"""


async def _read(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except SeismoError as exc:
        raise ResourceError(error_text(exc)) from None


def register(kit: Toolkit) -> None:
    server, backend = kit.server, kit.backend

    @server.resource("seismo://rules", name="rules", mime_type="text/yaml",
                     description="Every alert rule, as in seismo.yaml")
    async def rules() -> str:
        docs = await _read(backend.rules)
        return yaml.safe_dump({"rules": docs}, sort_keys=False, allow_unicode=True)

    @server.resource("seismo://slos", name="slos", mime_type="text/yaml",
                     description="Every SLO definition, as in seismo.yaml")
    async def slos() -> str:
        docs = await _read(backend.slos)
        return yaml.safe_dump({"slos": [{k: d.get(k) for k in SLO_FIELDS} for d in docs]},
                              sort_keys=False, allow_unicode=True)

    @server.resource("seismo://models", name="models", mime_type="application/json",
                     description="ML models being watched, with their versions")
    async def models() -> str:
        return json.dumps({"models": await _read(backend.models)}, indent=1)

    @server.prompt(name="investigate_alert",
                   description="Walk through an incident: from an alert to its cause")
    def investigate_alert(alert_id: str) -> str:
        return INVESTIGATE.format(alert_id=alert_id)
