"""Alerting: rule expressions and the alert state machine (issue 6, groundwork).

Plain objects only so far: `parse_expr` turns a rule's `expr` into a typed tree, `Alert`
walks one fingerprint through pending → firing → resolved (and acknowledged). The engine
wiring, the API, routes, channels and notifications come later.
"""

from seismo.alerting.expr import (
    Absent,
    Anomaly,
    Comparison,
    Expr,
    ExprError,
    Forecast,
    Instant,
    Operand,
    OverTime,
    Rate,
    Ratio,
    parse_expr,
)
from seismo.alerting.state import (
    Acknowledgement,
    Alert,
    AlertState,
    Episode,
    Transition,
    fingerprint,
)

__all__ = [
    "Absent",
    "Acknowledgement",
    "Alert",
    "AlertState",
    "Anomaly",
    "Comparison",
    "Episode",
    "Expr",
    "ExprError",
    "Forecast",
    "Instant",
    "Operand",
    "OverTime",
    "Rate",
    "Ratio",
    "Transition",
    "fingerprint",
    "parse_expr",
]
