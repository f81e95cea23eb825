"""Settings: file < environment < flags, and a bad or unknown key stops start-up by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seismo.config import load_settings, parse_duration_s
from seismo.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seismo.yaml", "port: 9001\nretention: 7d\nlimits:\n  max_series: 5\n")
    s = load_settings(cfg, {}, environ={})
    assert (s.port, s.retention, s.limits.max_series) == (9001, "7d", 5)
    s = load_settings(cfg, {}, environ={"SEISMO_PORT": "9002", "SEISMO_LIMITS__MAX_SERIES": "6"})
    assert (s.port, s.limits.max_series) == (9002, 6)
    s = load_settings(cfg, {"port": 9003}, environ={"SEISMO_PORT": "9002"})
    assert s.port == 9003
    assert s.retention_s == 7 * 86400


@pytest.mark.parametrize(("text", "needle"), [
    ("prot: 1\n", "'prot': unknown key"),
    ("limits:\n  max_serie: 3\n", "'limits.max_serie': unknown key"),
    ("port: lots\n", "'port'"),
    ("retention: forever\n", "'retention'"),
    ("- a\n- b\n", "must be a mapping"),
    ("port: [\n", "not valid YAML"),
    ("1: x\n", "key 1 is not a setting name"),  # found by tests/fuzz: was a TypeError
])
def test_bad_file_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = write(tmp_path / "seismo.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {}, environ={})
    assert needle in err.value.message


def test_unknown_environment_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SEISMO_PROT"):
        load_settings(None, {}, environ={"SEISMO_PROT": "1"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", {}, environ={})


def test_serve_refuses_to_start_with_a_bad_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "seismo.yaml", "colector: false\n")
    done = subprocess.run(
        [sys.executable, "-m", "seismo", "serve", "--config", str(cfg),
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "'colector': unknown key" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_durations() -> None:
    assert parse_duration_s("250ms") == 0.25
    assert parse_duration_s("30d") == 30 * 86400
    with pytest.raises(ValueError):
        parse_duration_s("5 parsecs")
