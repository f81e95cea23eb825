"""REST route of the energy stage: the 16 statistics of seed 003 for a selector.

Thin: read the query parameters, call `EnergyService.stats` off the event loop. Viewers
may read it (see `access.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from seismo.energy import EnergyService


def _energy(request: Request) -> EnergyService:
    service: EnergyService = request.app.state.engine.energy
    return service


def build_energy_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["energy"])

    @router.get("/energy/stats")
    async def energy_stats(
        request: Request,
        selector: Annotated[str | None, Query(
            description="power series; default energy.selector")] = None,
        window: Annotated[str | None, Query(description="e.g. 24h; default energy.window")
                          ] = None,
        unit: Annotated[str | None, Query(description="W or kW: the unit of the series' "
                                                      "values; default energy.unit")] = None,
        tariff: Annotated[float | None, Query(description="price per kWh")] = None,
        carbon: Annotated[float | None, Query(description="kg CO2 per kWh")] = None,
        active_within: Annotated[str | None, Query(
            description="a machine is active if it reported this recently, e.g. 5m")] = None,
    ) -> dict[str, Any]:
        """Total readings and energy (kWh), data rate, uptime, peak and average power, load
        factor, cost and CO2 (total and per day), anomalies, active machines, and the
        consumption of each machine (docs/energy.md)."""
        service = _energy(request)
        return await run_in_threadpool(lambda: service.stats(
            selector, window, unit=unit, tariff=tariff, carbon=carbon,
            active_within=active_within))

    return router
