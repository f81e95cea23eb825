"""Forecasting: damped Holt-Winters for many series at once, backtested, with intervals.

`forecast_many` forecasts a matrix of resampled series; `ForecastService` does it for the
series a selector picks from the store (`GET /api/v1/forecast`); forecast rules
(`forecast(disk_free[6h], 4h) < 0`) call `forecast_many` from the alert evaluator.
See docs/forecast.md.
"""

from seismo.forecast.crossing import crossings, first_crossing
from seismo.forecast.model import LEVEL, Forecasts, forecast_many
from seismo.forecast.resample import resample, rule_step_ms
from seismo.forecast.service import ForecastService

__all__ = ["LEVEL", "ForecastService", "Forecasts", "crossings", "first_crossing",
           "forecast_many", "resample", "rule_step_ms"]
