"""The dashboard: a static single-page app (ES modules, no build step, uPlot vendored).

It sits at the very end of the data path, a client like any other: it only talks to the
public REST API and `/api/v1/stream`. `api/ui.py` serves these files; docs/dashboard.md
describes the tabs.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = STATIC_DIR / "index.html"

__all__ = ["INDEX", "STATIC_DIR"]
