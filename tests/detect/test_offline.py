"""`seismo detect FILE.csv`: the offline tool over the live engine's ensemble."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from seismo.detect import detect_series, read_series


def seismo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seismo", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _write(path: Path, values: np.ndarray, epoch_ms: bool = False) -> None:
    start = np.datetime64("2014-04-01T00:00:00", "ms")
    with path.open("w") as f:
        f.write("timestamp,value\n")
        for i, v in enumerate(values):
            at = start + np.timedelta64(5 * i, "m")
            stamp = str(at.astype(np.int64)) if epoch_ms else str(at).replace("T", " ")[:19]
            f.write(f"{stamp},{v}\n")


def test_detect_writes_one_scored_row_per_input_row(tmp_path: Path) -> None:
    values = 10 + np.random.default_rng(2).normal(0, 1, 400)
    values[300] = 40
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _write(source, values)
    result = seismo("detect", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "kind", "expected",
                             "lower", "upper"]
    assert len(rows) == 400 and rows[0]["timestamp"] == "2014-04-01 00:00:00"
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert scores.argmax() == 300 and rows[300]["kind"] == "spike"
    assert "1 anomalies" in result.stderr


def test_detect_is_the_same_whatever_the_batch_size(tmp_path: Path) -> None:
    values = 10 + np.random.default_rng(4).normal(0, 1, 300)
    values[250:] += 5
    source = tmp_path / "in.csv"
    _write(source, values, epoch_ms=True)
    data = read_series(source)
    one = detect_series([(data.ts, data.values)], batch_rows=1)[0]
    many = detect_series([(data.ts, data.values)], batch_rows=97)[0]
    assert np.array_equal(one.score, many.score)
    assert np.array_equal(one.kind, many.kind)


def test_detect_errors_are_one_line_and_exit_non_zero(tmp_path: Path) -> None:
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("time,v\n1,2\n")
    bad_row = tmp_path / "r.csv"
    bad_row.write_text("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,oops\n")
    for path, message in ((bad_header, "header must be timestamp,value"),
                          (bad_row, "line 3"),
                          (tmp_path / "missing.csv", "No such file")):
        result = seismo("detect", str(path))
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
