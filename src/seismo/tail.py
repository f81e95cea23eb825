"""`seismo tail`: the live stream in a terminal, one line per sample or per message.

Sits beside the CLI: it subscribes through `seismo.client.AsyncClient` like any other
client and only turns messages into text.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any, TextIO

import msgspec
from websockets.exceptions import ConnectionClosed

from seismo.client import AsyncClient

TOPICS = ("samples", "events", "anomalies", "alerts", "stats")
SELECTOR_TOPICS = ("samples", "anomalies")


async def tail(url: str, token: str | None, topic: str, selector: str | None, *,
               as_json: bool, count: int | None, out: TextIO, err: TextIO) -> None:
    """Print the topic's messages until `count` of them (gaps not counted), or forever."""
    def on_retry(error: Exception, delay_s: float) -> None:
        print(f"seismo tail: {reason(error)}; retrying in {delay_s:.1f} s", file=err, flush=True)

    seen = 0
    async with AsyncClient(url, token) as client:
        async for message in client.subscribe(topic, selector=selector, on_retry=on_retry):
            if message.get("type") == "gap":
                print(gap_line(message), file=err, flush=True)
                if as_json:
                    out.write(msgspec.json.encode(message).decode() + "\n")
                    out.flush()
                continue
            if as_json:
                out.write(msgspec.json.encode(message).decode() + "\n")
            else:
                out.writelines(line + "\n" for line in lines_of(message))
            out.flush()
            seen += 1
            if count is not None and seen >= count:
                return


def reason(error: Exception) -> str:
    """One short line for a failed attempt or a lost connection."""
    text = str(error) or type(error).__name__
    if isinstance(error, ConnectionClosed):
        return f"connection lost: {text}"
    if isinstance(error, TimeoutError):  # before OSError, its base class
        return f"timed out: {text}"
    if isinstance(error, OSError):
        return f"cannot connect: {error.strerror or text}"
    return f"cannot connect: {text}"


def gap_line(message: dict[str, Any]) -> str:
    """A warning about messages the stream will never deliver."""
    what = "messages"
    if message.get("from_seq") is not None:
        what = f"messages {message['from_seq']}..{message['to_seq']}"
    missed = message.get("missed")
    counted = f" ({missed} matching)" if missed is not None else ""
    return (f"warning: gap in {message.get('topic')}: {what} lost{counted}, "
            f"reason: {message.get('reason')}")


def lines_of(message: dict[str, Any]) -> Iterator[str]:
    """Readable lines: one per sample of a `samples` message, else one per message."""
    kind = message.get("type")
    if kind == "samples":
        for s in message.get("series", []):
            name = series_name(s["metric"], s.get("labels") or {})
            for ts, value in zip(s["timestamps"], s["values"], strict=True):
                yield f"{clock(ts)}  {name}  {number(value)}"
        return
    record = message.get(str(kind))
    if not isinstance(record, dict):
        yield msgspec.json.encode(message).decode()
        return
    ts = record.get("timestamp", record.get("ts"))
    head = f"{clock(ts) if isinstance(ts, int) else '-'}  {kind}"
    if kind == "event":
        text = f"  {record['message']!r}" if record.get("message") else ""
        yield (f"{head}  {record.get('type')}  source={record.get('source')} "
               f"severity={record.get('severity')}{text}{pairs(record.get('attributes'))}")
        return
    if isinstance(record.get("metric"), str):
        head += "  " + series_name(record["metric"], record.get("labels") or {})
    rest = {k: v for k, v in record.items()
            if k not in ("timestamp", "ts", "metric", "labels")}
    yield head + pairs(rest)


def pairs(fields: Any) -> str:
    """`  k=v k=v`, values that are not scalars as JSON."""
    if not isinstance(fields, dict) or not fields:
        return ""
    return "  " + " ".join(
        f"{k}={v if isinstance(v, str | int | float) else json.dumps(v)}"
        for k, v in fields.items())


def series_name(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}" if inner else metric


def clock(ts_ms: int) -> str:
    """Local time to the millisecond, e.g. `2024-05-01 12:00:00.250`."""
    at = datetime.datetime.fromtimestamp(ts_ms / 1000)
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def number(value: float | None) -> str:
    return "null" if value is None else f"{value:.15g}"
