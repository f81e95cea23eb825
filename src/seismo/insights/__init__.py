"""Predictive insights: ranked plain-language findings with their numbers, risk and action.

`InsightService` is the stage (REST and MCP call it); `trends`, `budgets`, `noise` and
`sessions` hold the checks (the last reads the sessions stage's predictions). See
docs/insights.md.
"""

from seismo.insights.finding import KINDS, RISKS, Finding, rank
from seismo.insights.service import InsightService

__all__ = ["KINDS", "RISKS", "Finding", "InsightService", "rank"]
