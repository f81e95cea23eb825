"""Smoke version of the disk-full scenario (bench/chaos/diskfull.py): a small tmpfs as the
data dir, filled under load, a kill -9 on the full disk, space back, everything read back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chaos import diskfull


def can_mount(tmp_path: Path) -> str | None:
    """None if a tmpfs can be mounted here, else why not."""
    probe = tmp_path / "probe"
    try:
        diskfull.mount_tmpfs(probe, 1)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        return f"cannot mount a tmpfs (needs root): {str(detail).strip()[:200]}"
    diskfull.unmount(probe)
    return None


def test_disk_full_smoke(tmp_path: Path) -> None:
    reason = can_mount(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    figures = diskfull.run(tmp_path, **diskfull.SMOKE)
    assert figures["ok"], figures["checks"]
    assert figures["acknowledged"] > 0 and figures["lost"] == 0, figures["figure"]
    assert figures["series_with_wrong_sum"] == 0 and figures["events_lost"] == 0
    assert figures["refused_507_503"] > 0 and figures["bad_replies"] == []
    assert all(c["recovery_s"] is not None for c in figures["cycles"])
