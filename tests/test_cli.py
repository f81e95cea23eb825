"""`seismo push` and `seismo query` run as a user would, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server import ServerProcess, free_port


def seismo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "seismo", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def latest(client: httpx.Client, selector: str) -> list[dict[str, Any]]:
    reply = client.get("/query", params={"selector": selector, "window": "1h"})
    assert reply.status_code == 200, reply.text
    series: list[dict[str, Any]] = reply.json()["series"]
    return series


def test_push_one_value(server: ServerProcess, client: httpx.Client) -> None:
    done = seismo("push", "cli_one_temp", "21.5", "--label", "room=lab", "-l", "floor=2",
                  "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "accepted 1"
    [series] = latest(client, "cli_one_temp")
    assert series["labels"] == {"room": "lab", "floor": "2"}
    assert series["value"] == 21.5


def test_push_one_value_with_timestamp(server: ServerProcess, client: httpx.Client) -> None:
    ts = int(time.time() * 1000) - 60_000
    done = seismo("push", "cli_ts_value", "7", "--timestamp", str(ts), "--url", server.url)
    assert done.returncode == 0, done.stderr
    [series] = latest(client, "cli_ts_value")
    assert series["timestamp"] == ts


def test_push_a_refused_value_is_an_error(server: ServerProcess) -> None:
    done = seismo("push", "bad-name", "1", "--url", server.url)
    assert done.returncode != 0
    assert done.stderr.startswith("error: sample rejected: metric name 'bad-name' is invalid")
    assert len(done.stderr.strip().splitlines()) == 1


def test_push_csv_in_batches(server: ServerProcess, client: httpx.Client, tmp_path: Path) -> None:
    start = int(time.time() * 1000) - 12_000 * 100
    path = tmp_path / "data.csv"
    lines = ["metric,value,timestamp,host"]
    lines += [f"cli_csv_load,{i % 10},{start + i * 100},web-{i % 2}" for i in range(12_000)]
    path.write_text("\n".join(lines) + "\n")

    done = seismo("push", "--file", str(path), "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "accepted 12000, rejected 0"
    found = {s["labels"]["host"]: s for s in latest(client, "cli_csv_load")}
    assert set(found) == {"web-0", "web-1"}
    assert found["web-1"]["value"] == 9.0
    assert found["web-1"]["timestamp"] == start + 11_999 * 100


def test_push_csv_reports_bad_rows(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("metric,value,site\ncli_csv_mixed,1,a\ncli_csv_mixed,oops,a\n"
                    "bad-name,3,a\ncli_csv_mixed,4,b\n")
    done = seismo("push", "--file", str(path), "--url", server.url)
    assert done.returncode == 1
    assert done.stdout.strip() == "accepted 2, rejected 2"
    assert "line 3: value or timestamp is not a number" in done.stderr
    assert "line 4: metric name 'bad-name' is invalid" in done.stderr


def test_push_jsonl(server: ServerProcess, client: httpx.Client, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    rows = [{"metric": "cli_jsonl_power", "labels": {"meter": "m1"}, "timestamp": now - 2000,
             "value": 100.0},
            {"metric": "cli_jsonl_power", "labels": {"meter": "m1"}, "timestamp": now - 1000,
             "value": 120.5},
            {"metric": "cli_jsonl_power", "labels": {"meter": "m2"}, "value": 7}]
    path = tmp_path / "data.jsonl"
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"metric": "cli_jsonl_power"}\nnot json\n'
    path.write_text(text)

    done = seismo("push", "--file", str(path), "--url", server.url)
    assert done.returncode == 1
    assert done.stdout.strip() == "accepted 3, rejected 2"
    assert "line 4: value is missing or not a number" in done.stderr
    assert "line 5: not JSON" in done.stderr
    found = {s["labels"]["meter"]: s["value"] for s in latest(client, "cli_jsonl_power")}
    assert found == {"m1": 120.5, "m2": 7.0}


def test_query_prints_latest_and_stats(server: ServerProcess) -> None:
    for value in ("3", "5"):
        assert seismo("push", "cli_query_depth", value, "-l", "queue=mail",
                      "--url", server.url).returncode == 0
    done = seismo("query", 'cli_query_depth{queue="mail"}', "--window", "10m",
                  "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert "latest value and stats over 10m" in done.stdout
    [row] = [line for line in done.stdout.splitlines() if "cli_query_depth" in line]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == 'cli_query_depth{queue="mail"}'
    assert cells[2:7] == ["5", "2", "4", "3", "5"]  # value, count, mean, min, max


def test_query_range_prints_buckets(server: ServerProcess) -> None:
    assert seismo("push", "cli_range_temp", "12.5", "--url", server.url).returncode == 0
    done = seismo("query", "cli_range_temp", "--range", "10m", "--step", "1m", "--agg", "max",
                  "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert "max per step" in done.stdout
    assert "cli_range_temp" in done.stdout
    assert "12.5" in done.stdout


def test_query_with_no_match(server: ServerProcess) -> None:
    done = seismo("query", "cli_nothing_here", "--url", server.url)
    assert done.returncode == 0
    assert done.stdout.strip() == "no series match cli_nothing_here"


def test_server_error_is_one_line(server: ServerProcess) -> None:
    done = seismo("query", "cli_bad{", "--url", server.url)
    assert done.returncode != 0
    assert done.stderr.startswith("error: HTTP 400: bad selector")
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreachable_server_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("query", "up"), ("push", "up", "1")):
        done = seismo(*args, "--url", url)
        assert done.returncode != 0
        assert done.stderr.startswith(f"error: cannot reach seismo at {url}")
        assert len(done.stderr.strip().splitlines()) == 1
        assert done.stdout == ""
