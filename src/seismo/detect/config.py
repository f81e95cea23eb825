"""Detection configuration: plain data, one object per selector, chosen by the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DETECTORS = ("mad", "seasonal", "cusum", "hst", "extreme", "drift")


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Which detectors run and how touchy they are; the defaults are the NAB-scored ones."""

    detectors: tuple[str, ...] = DETECTORS
    sensitivity: float = 1.0  # > 1: more anomalies (bands shrink by this factor)
    warmup: int = 100  # samples a series needs before it may score above 0
    seasonality: Literal["auto", "on", "off"] = "auto"
    min_score: float = 0.5  # an anomaly is a sample scoring at least this
    window: int = 128  # robust z-score: rolling window (samples)
    refresh: int = 4  # robust z-score: recompute median/MAD every this many samples
    z_half: float = 5.0  # deviation (in robust sigmas) that scores 0.5
    cusum_k: float = 0.5  # CUSUM slack (sigmas)
    cusum_h: float = 12.0  # CUSUM decision level (sigmas)
    hst_trees: int = 16
    hst_depth: int = 5
    hst_window: int = 256
    extreme_tol: float = 0.03  # beyond the seen range by this share of it: scores 0.5
    extreme_half_life: int = 50_000  # samples for the seen range to shrink by half
    extreme_noise: float = 1.25  # ... and by this many step-to-step sigmas
    drift_fast: int = 50  # slow drift: half-life (samples) of the recent level ...
    drift_slow: int = 2000  # ... and of the long baseline it is compared with
    refractory: int = 300  # half-life (samples) of the bar a repeat anomaly must clear
    holdoff: int = 100  # samples after a report >= holdoff_after in which nothing is reported
    holdoff_after: float = 0.6  # a score at least this starts a hold-off
    holdoff_escape: float = 4.0  # in a hold-off, odds this many times the held report's pass
    agreement: float = 0.25  # share of the second-strongest detector score added to the best
    weights: dict[str, float] = field(
        default_factory=lambda: {"mad": 0.9, "seasonal": 0.8, "hst": 0.7, "drift": 0.8})

    def __post_init__(self) -> None:
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(DETECTORS)}")
        if not self.detectors:
            raise ValueError("detectors must name at least one detector")
        if self.sensitivity <= 0:
            raise ValueError("sensitivity must be > 0")
        if self.warmup < 0 or self.window < 8 or self.refresh < 1:
            raise ValueError("warmup must be >= 0, window >= 8 and refresh >= 1")
        if not 0 <= self.min_score <= 1:
            raise ValueError("min_score must be in 0..1")
        if self.holdoff < 0 or not 0 <= self.holdoff_after <= 1 or not 0 <= self.agreement <= 1:
            raise ValueError("holdoff must be >= 0, holdoff_after and agreement in 0..1")
        if self.holdoff_escape < 1:
            raise ValueError("holdoff_escape must be >= 1")
        if not 1 <= self.drift_fast < self.drift_slow:
            raise ValueError("drift_fast must be >= 1 and below drift_slow")
        if self.seasonality not in ("auto", "on", "off"):
            raise ValueError("seasonality must be auto, on or off")
