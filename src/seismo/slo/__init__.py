"""Service level objectives: SLIs from the store, error budgets, burn-rate alerts.

`parse_slo` reads a definition, `SLOEvaluator` (the stage) judges every SLO on a timer and
raises its alerts through the alert service; `burn.py` holds the arithmetic.
"""

from seismo.slo.burn import CONDITIONS, STATUSES, WINDOWS, Condition, Verdict, WindowSLI, judge
from seismo.slo.definition import SLI, SLO, parse_slo, parse_slos
from seismo.slo.evaluator import Evaluation, SLOEvaluator

__all__ = ["CONDITIONS", "SLI", "SLO", "STATUSES", "WINDOWS", "Condition", "Evaluation",
           "SLOEvaluator", "Verdict", "WindowSLI", "judge", "parse_slo", "parse_slos"]
