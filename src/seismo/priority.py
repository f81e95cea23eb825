"""CPU priority of background threads: request handling first.

Validation of ingest bodies, the detectors and block cuts can each keep a core busy. On a
small machine under load they took the CPU from the event loop: at 10x ingest overload on
2 vCPUs, `/api/v1/health` had p99 110-166 ms with every thread at the same priority, and
61 ms with these threads at niceness 10 (bench/chaos/overload.py, docs/reliability.md).
The WAL writer (acknowledgements), the alerting thread and the event loop keep the normal
priority. On an idle machine niceness changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading

BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority (per thread on Linux); elsewhere, nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
