"""MCP tools for energy and insights: seed 003's 16 energy statistics with consumption per
machine, and the ranked findings of the insights stage.

Both read the same services as `GET /api/v1/energy/stats` and `GET /api/v1/insights`;
machines and findings are cut to `MAX_MACHINES` and `limit` rows.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from mcp.server.mcpserver import Context
from pydantic import Field

from seismo.auth import Role
from seismo.energy import SEED_FIELDS
from seismo.mcp import shape
from seismo.mcp.toolkit import Toolkit

MAX_MACHINES = 20
PARAMETERS = ("selector", "window", "start_ms", "end_ms", "unit", "tariff_per_kwh",
              "currency", "carbon_kg_per_kwh", "max_gap", "active_within")
MACHINE_FIELDS = ("machine", "series", "readings", "energy_kwh", "cost", "co2_kg",
                  "peak_power_kw", "avg_power_kw", "uptime_percent", "last_ms", "active")


class EnergyStats(TypedDict):
    parameters: dict[str, Any]
    stats: dict[str, Any]
    series: int
    machines_total: int
    machines_shown: int
    machines: list[dict[str, Any]]


class Insights(TypedDict):
    total: int
    shown: int
    truncated: bool
    findings: list[dict[str, Any]]
    checked: dict[str, int]
    errors: dict[str, str]


def rounded(value: Any) -> Any:
    return shape.num(value) if isinstance(value, float) else value


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def energy_stats(
        ctx: Context,
        selector: Annotated[str | None, Field(description=(
            "power series, e.g. machine_power_watts{line=\"a\"}; default the server's "
            "energy.selector"))] = None,
        window: Annotated[str | None, Field(description="e.g. 1h, 24h, 7d; default 24h")]
        = None,
    ) -> EnergyStats:
        """Energy over a window from power series: readings, kWh, data rate, uptime, peak
        and average power, load factor, cost and CO2 (total and per day), anomalies,
        active machines (seed 003's 16 statistics), then the largest consumers."""
        reply = await backend.energy_stats(selector, window)
        machines = reply.get("machines") or []
        return {"parameters": {k: reply.get(k) for k in PARAMETERS},
                "stats": {field: rounded(reply.get(field)) for field in SEED_FIELDS.values()},
                "series": int(reply.get("series") or 0),
                "machines_total": int(reply.get("machines_total") or len(machines)),
                "machines_shown": min(len(machines), MAX_MACHINES),
                "machines": [{k: rounded(m.get(k)) for k in MACHINE_FIELDS}
                             for m in machines[:MAX_MACHINES]]}

    @kit.tool(Role.VIEWER)
    async def insights(
        ctx: Context, limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
    ) -> Insights:
        """Findings, highest risk first: trends and capacity, SLO budgets, models, noisy
        rules, anomaly rates, jobs; each with its numbers and a recommended action."""
        reply = await backend.insights(limit)
        findings = reply.get("findings") or []
        total = int(reply.get("total") or len(findings))
        shown = findings[:limit]
        return {"total": total, "shown": len(shown), "truncated": total > len(shown),
                "findings": shown, "checked": reply.get("checked") or {},
                "errors": reply.get("errors") or {}}
