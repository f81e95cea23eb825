"""Energy statistics of power series: kWh by the trapezoid rule, cost, CO2, load factor.

`EnergyService` is the stage (REST, MCP and the `stats` topic call it); `integrate` and
`summarize` are the arithmetic. See docs/energy.md.
"""

from seismo.energy.integrate import SeriesEnergy, integrate
from seismo.energy.service import EnergyService
from seismo.energy.stats import SEED_FIELDS, Prices, summarize

__all__ = ["SEED_FIELDS", "EnergyService", "Prices", "SeriesEnergy", "integrate", "summarize"]
