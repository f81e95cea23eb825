"""Sessions from events: lifecycle, per-kind statistics, completion and success predictions.

`SessionService` is the stage (REST, the stream and MCP read it); `model` holds the
lifecycle, `predict` the estimates, `store` the SQLite table. See docs/sessions.md.
"""

from seismo.sessions.model import END_TYPE, START_TYPE, STATES, STATUSES, Session
from seismo.sessions.service import OVERDUE_METRIC, RISK_METRIC, SessionService

__all__ = ["END_TYPE", "OVERDUE_METRIC", "RISK_METRIC", "START_TYPE", "STATES", "STATUSES",
           "Session", "SessionService"]
