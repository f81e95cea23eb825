"""Streaming anomaly detection: detectors over batches of samples, state per series slot.

Sits after the head in the data path: the engine feeds every ingest batch to an `Ensemble`
and turns high scores into anomalies. `seismo detect` runs the same ensemble over a file.
"""

from seismo.detect.base import KINDS, Detector, Step, rounds
from seismo.detect.config import DETECTORS, DetectConfig
from seismo.detect.cusum import Cusum
from seismo.detect.drift import SlowDrift
from seismo.detect.ensemble import Ensemble, Scores
from seismo.detect.extreme import RangeExcess
from seismo.detect.hst import HalfSpaceTrees
from seismo.detect.mad import RobustZ
from seismo.detect.offline import detect_series, read_series, write_scores
from seismo.detect.seasonal import SeasonalEWMA

__all__ = [
    "DETECTORS",
    "KINDS",
    "Cusum",
    "DetectConfig",
    "Detector",
    "Ensemble",
    "HalfSpaceTrees",
    "RangeExcess",
    "RobustZ",
    "Scores",
    "SeasonalEWMA",
    "SlowDrift",
    "Step",
    "detect_series",
    "read_series",
    "rounds",
    "write_scores",
]
