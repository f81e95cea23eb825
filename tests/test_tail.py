"""`seismo tail` run as a user would, against a real server; its line formats as functions."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from seismo.tail import gap_line, lines_of, reason
from tests.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(60)
SAMPLE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  (\S+)  (\S+)$")


def start_tail(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "seismo", "tail", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def feed_until_done(tail: subprocess.Popen[str], send: Callable[[int], None],
                    timeout_s: float = 20.0) -> tuple[str, str]:
    """Call `send(i)` every 50 ms until tail exits: it subscribes at a moment we cannot see."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while tail.poll() is None and time.monotonic() < deadline:
        send(i)
        i += 1
        time.sleep(0.05)
    try:
        out, err = tail.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        tail.kill()
        out, err = tail.communicate()
        pytest.fail(f"seismo tail did not exit: {err}")
    return out, err


def test_tail_prints_matching_samples_and_stops_after_count(server: ServerProcess,
                                                            client: httpx.Client) -> None:
    tail = start_tail('tail_temp{room="lab"}', "--count", "3", "--url", server.url)

    def send(i: int) -> None:
        client.post("/ingest", json={"samples": [
            {"metric": "tail_temp", "labels": {"room": "lab"}, "value": 100 + i},
            {"metric": "tail_temp", "labels": {"room": "hall"}, "value": -1}]})

    out, err = feed_until_done(tail, send)
    assert tail.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3, out
    parsed = [SAMPLE_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {m.group(1) for m in parsed if m} == {'tail_temp{room="lab"}'}
    values = [int(m.group(2)) for m in parsed if m]
    assert values == list(range(values[0], values[0] + 3))  # consecutive pushes, none missed
    assert err == ""


def test_tail_json_prints_raw_messages(server: ServerProcess, client: httpx.Client) -> None:
    tail = start_tail("--topic", "events", "--json", "--count", "2", "--url", server.url)

    def send(i: int) -> None:
        client.post("/events", json={"type": "tail_deploy", "source": "ci",
                                     "attributes": {"n": i}})

    out, err = feed_until_done(tail, send)
    assert tail.returncode == 0, err
    messages = [json.loads(line) for line in out.splitlines()]
    assert len(messages) == 2
    assert all(m["type"] == "event" and m["topic"] == "events" for m in messages)
    assert messages[1]["seq"] > messages[0]["seq"]
    assert messages[1]["event"]["attributes"]["n"] == messages[0]["event"]["attributes"]["n"] + 1


def test_tail_events_are_one_readable_line_each(server: ServerProcess,
                                                client: httpx.Client) -> None:
    tail = start_tail("--topic", "events", "--count", "1", "--url", server.url)

    def send(i: int) -> None:
        client.post("/events", json={"type": "tail_incident", "source": "pager",
                                     "severity": "high", "message": "db down",
                                     "attributes": {"db": "main"}})

    out, err = feed_until_done(tail, send)
    assert tail.returncode == 0, err
    [line] = out.splitlines()
    assert line.endswith("  event  tail_incident  source=pager severity=high  'db down'  "
                         "db=main")


def test_bad_selector_is_one_error_line(server: ServerProcess) -> None:
    done = subprocess.run([sys.executable, "-m", "seismo", "tail", "tail_bad{",
                           "--url", server.url], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "selector" in done.stderr or "tail_bad{" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "problem"), [
    ((), "topic samples needs a SELECTOR"),
    (("--topic", "weather"), "--topic must be one of"),
    (("up", "--topic", "events"), "topic events takes no SELECTOR"),
])
def test_bad_arguments_exit_2(args: tuple[str, ...], problem: str) -> None:
    done = subprocess.run([sys.executable, "-m", "seismo", "tail", *args], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert problem in done.stderr


def test_unreachable_server_is_retried_until_ctrl_c() -> None:
    tail = start_tail("up", "--url", f"http://127.0.0.1:{free_port()}")
    assert tail.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=read_lines, args=(tail.stderr, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while len(lines) < 3 and time.monotonic() < deadline and tail.poll() is None:
        time.sleep(0.05)
    tail.send_signal(signal.SIGINT)
    try:
        tail.wait(timeout=10)
    finally:
        if tail.poll() is None:
            tail.kill()
    reader.join(timeout=5)
    assert tail.returncode == 0, lines
    assert len(lines) >= 3
    assert all(line.startswith("seismo tail: cannot connect") and "retrying in" in line
               for line in lines), lines
    assert tail.stdout is not None and tail.stdout.read() == ""
    tail.stdout.close()


def read_lines(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))
    stream.close()


# -- line formats -----------------------------------------------------------------------

def test_a_samples_message_is_one_line_per_sample() -> None:
    message = {"type": "samples", "topic": "samples", "seq": 7, "series": [
        {"metric": "cpu", "labels": {"host": "a", "dc": "eu"},
         "timestamps": [1700000000000, 1700000000250], "values": [0.5, 3.0]},
        {"metric": "up", "labels": {}, "timestamps": [1700000000000], "values": [1.0]}]}
    lines = list(lines_of(message))
    assert [line.split("  ")[1:] for line in lines] == [
        ['cpu{dc="eu",host="a"}', "0.5"], ['cpu{dc="eu",host="a"}', "3"], ["up", "1"]]
    assert lines[1].split("  ")[0].endswith(".250")


def test_other_messages_are_one_line_each() -> None:
    stats = {"type": "stats", "topic": "stats", "seq": 3,
             "stats": {"ts": 1700000000000, "ingest_samples_per_s": 12.5, "series": 4}}
    [line] = lines_of(stats)
    assert line.endswith("  stats  ingest_samples_per_s=12.5 series=4")
    anomaly = {"type": "anomaly", "topic": "anomalies", "seq": 1,
               "anomaly": {"timestamp": 1700000000000, "metric": "cpu",
                           "labels": {"host": "a"}, "score": 9.5, "detector": "mad"}}
    [line] = lines_of(anomaly)
    assert line.endswith('  anomaly  cpu{host="a"}  score=9.5 detector=mad')


def test_gap_warning_line() -> None:
    gap = {"type": "gap", "topic": "samples", "seq": 500, "from_seq": 431, "to_seq": 470,
           "missed": 40, "reason": "slow_client"}
    assert gap_line(gap) == ("warning: gap in samples: messages 431..470 lost (40 matching), "
                             "reason: slow_client")
    restart = {"type": "gap", "topic": "events", "seq": 0, "from_seq": None, "to_seq": None,
               "missed": None, "reason": "restart"}
    assert gap_line(restart) == "warning: gap in events: messages lost, reason: restart"


def test_retry_lines_say_what_went_wrong() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert reason(refused) == "cannot connect: Connect call failed ('127.0.0.1', 9)"
    assert reason(TimeoutError("nothing received for 40 s")) == (
        "timed out: nothing received for 40 s")
    lost = ConnectionClosedError(Close(1008, "client too slow"), None)
    assert reason(lost).startswith("connection lost: received 1008 (policy violation) client")
