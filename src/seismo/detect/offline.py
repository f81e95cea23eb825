"""Offline detection: run CSV files through the live engine's ensemble, in batches.

`seismo detect` and `bench/nab.py` use this. Files are read as `timestamp,value` (NAB
format: `2014-04-01 00:00:00`, taken as UTC, or epoch milliseconds) and fed to one
`Ensemble`, one slot per file, in batches of up to `batch_rows` rows per series in time
order, exactly as the engine feeds the samples of its ingest batches.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from seismo.detect.config import DetectConfig
from seismo.detect.ensemble import Ensemble, Scores
from seismo.errors import InvalidInput

OUTPUT_HEADER = ("timestamp", "value", "anomaly_score", "kind", "expected", "lower", "upper")


@dataclass(slots=True)
class SeriesFile:
    """A `timestamp,value` file in memory: the timestamps as written and as epoch ms."""

    path: Path
    stamps: list[str]
    ts: np.ndarray  # int64 ms
    values: np.ndarray  # float64


def _parse_ts(text: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return int(np.datetime64(text.replace(" ", "T"), "ms").astype(np.int64))


def read_series(path: Path) -> SeriesFile:
    """Read a `timestamp,value` CSV; InvalidInput names the line of the first bad row."""
    try:
        f = path.open(newline="")
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from exc
    stamps: list[str] = []
    ts: list[int] = []
    values: list[float] = []
    with f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["timestamp", "value"]:
            raise InvalidInput(f"{path}: the header must be timestamp,value "
                               f"(found {','.join(header) or 'nothing'})")
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            try:
                ts.append(_parse_ts(row[0]))
                values.append(float(row[1]))
            except (IndexError, ValueError) as exc:
                raise InvalidInput(f"{path}: line {line}: cannot read {','.join(row)!r} as "
                                   "timestamp,value") from exc
            stamps.append(row[0])
    return SeriesFile(path, stamps, np.array(ts, dtype=np.int64),
                      np.array(values, dtype=np.float64))


def detect_series(series: Sequence[tuple[np.ndarray, np.ndarray]],
                  config: DetectConfig | None = None, batch_rows: int = 100,
                  on_batch: Callable[[int], None] | None = None) -> list[Scores]:
    """Score several series (ts ms, values) with one ensemble, series i in slot i.

    Each batch holds the next `batch_rows` samples of every series; `on_batch(n)` is
    called with the number of samples scored after each batch.
    """
    ensemble = Ensemble(config)
    lengths = [len(t) for t, _ in series]
    parts: list[list[Scores]] = [[] for _ in series]
    for start in range(0, max(lengths, default=0), batch_rows):
        chunks = [(i, t[start:start + batch_rows], v[start:start + batch_rows])
                  for i, (t, v) in enumerate(series) if start < len(t)]
        slots = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, t, _ in chunks])
        scores = ensemble.update(slots, np.concatenate([t for _, t, _ in chunks]),
                                 np.concatenate([v for _, _, v in chunks]))
        offset = 0
        for i, t, _ in chunks:
            parts[i].append(_take(scores, slice(offset, offset + len(t))))
            offset += len(t)
        if on_batch is not None:
            on_batch(len(slots))
    return [_join(p, ensemble.names) for p in parts]


def _take(scores: Scores, part: slice) -> Scores:
    return Scores(scores.score[part], scores.kind[part], scores.confidence[part],
                  scores.expected[part], scores.lower[part], scores.upper[part],
                  scores.detectors[part], scores.names)


def _join(parts: list[Scores], names: tuple[str, ...]) -> Scores:
    if not parts:
        empty = np.zeros(0)
        return Scores(empty, np.zeros(0, np.int8), empty, empty, empty, empty,
                      np.zeros(0, np.uint8), names)
    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(p, field) for p in parts])

    return Scores(cat("score"), cat("kind"), cat("confidence"), cat("expected"), cat("lower"),
                  cat("upper"), cat("detectors"), names)


def _number(x: float) -> str:
    return "" if np.isnan(x) else f"{x:.10g}"


def write_scores(target: Path | TextIO, data: SeriesFile, scores: Scores) -> None:
    """Write `timestamp,value,anomaly_score,kind,expected,lower,upper` (NAB's columns first)."""
    if isinstance(target, Path):
        with target.open("w", newline="") as f:
            write_scores(f, data, scores)
        return
    kinds = scores.kind_names()
    out = csv.writer(target, lineterminator="\n")
    out.writerow(OUTPUT_HEADER)
    for i, stamp in enumerate(data.stamps):
        out.writerow((stamp, _number(data.values[i]), f"{scores.score[i]:.6f}", kinds[i],
                      _number(scores.expected[i]), _number(scores.lower[i]),
                      _number(scores.upper[i])))
