"""ML model monitoring: predictions and outcomes recorded durably, quality, drift, alerts.

`ModelService` is the stage (registry, record log, in-memory tables, metrics, drift,
comparison); `Evaluation` is its timer (series and alerts). See docs/models.md.
"""

from seismo.models.evaluation import Evaluation
from seismo.models.monitor import ModelService
from seismo.models.registry import TASKS

__all__ = ["TASKS", "Evaluation", "ModelService"]
