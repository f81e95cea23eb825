"""Dashboard benchmark (issue 10): time to the first live value, and the page's CPU.

Run with `.venv/bin/python bench/ui.py` (needs Debian's /usr/bin/chromium and playwright).
One run:

1. starts seismo (fresh data dir, free loopback port, --no-collector, stats every 1 s)
   and pushes one reading of this host's CPU and memory;
2. loads the dashboard RUNS times in a fresh browser context and records, in the page
   (performance.now(), from navigation start): when the CPU card first shows a number,
   when the connection indicator turns live, and when the first value that came over the
   WebSocket (a `stats` message) is on screen;
3. opens the Explorer on 20 series (`bench_ui{i="0".."19"}`, live tail on), pushes one
   sample to each every second for WARMUP + DURATION s, and reads Chromium's
   `Performance.getMetrics` (CDP) before and after DURATION: the page's main-thread busy
   share = Δ TaskDuration / Δ wall time, and script, layout and paint (RecalcStyle) parts.

Everything runs on 127.0.0.1; the server is stopped in a `finally`.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.server import ServerProcess

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]
PROBE = """
(() => {
  const marks = window.__marks = {};
  const seen = () => {
    const now = performance.now();
    const cpu = document.querySelector('[data-card="cpu"] .value');
    if (cpu && /\\d/.test(cpu.textContent) && marks.value == null) marks.value = now;
    const conn = document.getElementById('conn');
    if (conn && conn.dataset.state === 'live' && marks.live == null) marks.live = now;
    const main = document.getElementById('tab-overview');
    if (main && Number(main.dataset.statsSeq) >= 2 && marks.streamed == null) marks.streamed = now;
  };
  new MutationObserver(seen).observe(document, {subtree: true, childList: true,
    attributes: true, characterData: true});
})();
"""


def push(client: httpx.Client, series: list[dict[str, Any]]) -> None:
    reply = client.post("/api/v1/ingest", json={"samples": series})
    reply.raise_for_status()


def first_values(browser: Any, url: str, runs: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"value": [], "live": [], "streamed": []}
    for _ in range(runs):
        context = browser.new_context()
        page = context.new_page()
        page.add_init_script(PROBE)
        page.goto(url)
        page.wait_for_function("window.__marks && window.__marks.streamed != null",
                               timeout=30_000)
        marks = page.evaluate("window.__marks")
        for key in found:
            found[key].append(marks[key])
        context.close()
    return found


def page_cpu(browser: Any, srv: ServerProcess, series: int, warmup_s: float,
             duration_s: float) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "timeTicks"})
    stop = threading.Event()

    def feed() -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            n = 0
            next_at = time.monotonic()
            while not stop.is_set():
                push(client, [{"metric": "bench_ui", "labels": {"i": str(i)},
                               "value": (n * 7 + i * 13) % 100} for i in range(series)])
                n += 1
                next_at += 1.0
                stop.wait(max(0.0, next_at - time.monotonic()))

    with httpx.Client(base_url=srv.url, timeout=10) as client:  # the series exist first
        push(client, [{"metric": "bench_ui", "labels": {"i": str(i)}, "value": 0}
                      for i in range(series)])
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        page.goto(srv.url + "/#explorer?selector=bench_ui&range=5m")
        page.locator("#chart-explorer canvas").wait_for()
        page.wait_for_function(f"document.querySelectorAll('#chart-explorer .u-series')"
                               f".length >= {series + 1}")
        time.sleep(warmup_s)

        def metrics() -> dict[str, float]:
            got = cdp.send("Performance.getMetrics")["metrics"]
            return {m["name"]: m["value"] for m in got}

        before, t0 = metrics(), time.monotonic()
        time.sleep(duration_s)
        after, t1 = metrics(), time.monotonic()
    finally:
        stop.set()
        feeder.join(timeout=5)
        context.close()
    wall = t1 - t0

    def share(name: str) -> float:
        return 100 * (after[name] - before[name]) / wall

    return {"task": share("TaskDuration"), "script": share("ScriptDuration"),
            "layout": share("LayoutDuration"), "style": share("RecalcStyleDuration"),
            "heap_mb": after["JSHeapUsedSize"] / 2**20, "nodes": after["Nodes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads timed")
    parser.add_argument("--series", type=int, default=20, help="live series in the Explorer")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seismo-bench-ui-"))
    srv = ServerProcess(work / "data", "--no-collector", env={
        "SEISMO_STREAM__STATS_INTERVAL_S": "1", "SEISMO_DETECT__ENABLED": "false"})
    srv.start()
    try:
        host = socket.gethostname()
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            push(client, [
                {"metric": "host_cpu_usage_percent", "labels": {"host": host, "cpu": "total"},
                 "value": 12.5},
                {"metric": "host_memory_usage_percent", "labels": {"host": host},
                 "value": 40.0}])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=ARGS)
            try:
                firsts = first_values(browser, srv.url + "/", args.runs)
                cpu = page_cpu(browser, srv, args.series, args.warmup, args.duration)
            finally:
                browser.close()
    finally:
        srv.stop()
    print(f"# dashboard, {args.runs} page loads (ms from navigation start: median, max)")
    for key, label in [("value", "first value on screen (REST snapshot)"),
                       ("live", "indicator live (WebSocket subscribed)"),
                       ("streamed", "first value pushed over the WebSocket on screen")]:
        values = firsts[key]
        print(f"{label}: {statistics.median(values):.0f}, {max(values):.0f}")
    print(f"# Explorer, {args.series} live series at 1 update/s, {args.duration:.0f} s")
    print(f"main thread busy: {cpu['task']:.1f} % (script {cpu['script']:.1f} %, layout "
          f"{cpu['layout']:.1f} %, style {cpu['style']:.1f} %); JS heap {cpu['heap_mb']:.1f} MB,"
          f" {cpu['nodes']:.0f} DOM nodes")


if __name__ == "__main__":
    main()
