"""The `seismo` command: serve, push, query, token, detect."""

from __future__ import annotations

import copy
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from seismo.config import Settings, load_settings
from seismo.errors import SeismoError

if TYPE_CHECKING:
    from rich.table import Table

    from seismo.auth import TokenStore
    from seismo.client import Client

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="seismo: real-time monitoring and analytics server.")


@app.callback()
def _root() -> None:
    """seismo: real-time monitoring and analytics server."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8765]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="store directory [./seismo-data]")] = None,
    config: Annotated[Path | None, typer.Option(help="seismo.yaml")] = None,
    demo: Annotated[bool | None, typer.Option("--demo", help="add sample workloads")] = None,
    no_collector: Annotated[bool, typer.Option("--no-collector", help="no host metrics")] = False,
    retention: Annotated[str | None, typer.Option(help="keep samples this long, e.g. 30d")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
    insecure: Annotated[bool | None, typer.Option(
        "--insecure", help="allow a non-loopback --host with no token (open to all)")] = None,
) -> None:
    """Run the seismo server."""
    import uvicorn

    from seismo.api.app import create_app
    from seismo.auth import redact
    from seismo.engine import Engine
    from seismo.workers import attach_workers

    flags = {"host": host, "port": port, "data_dir": data_dir, "demo": demo,
             "retention": retention, "log_level": log_level,
             "collector": False if no_collector else None, "insecure": insecure}
    try:
        settings = load_settings(config, flags)
    except SeismoError as exc:
        fail(exc.message, 2)
        return
    _check_exposure(settings)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
    try:
        engine = Engine(settings)
    except (SeismoError, OSError) as exc:
        fail(f"cannot open the store in {settings.data_dir}: {exc}")
        return
    attach_workers(engine)
    typer.echo(f"seismo serving on http://{settings.host}:{settings.port} "
               f"(data in {settings.data_dir})", err=True)
    stream = settings.stream
    uvicorn.run(create_app(engine, freeze_gc=True), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False, log_config=_log_config(),
                # WebSocket pings find dead clients; messages between max_message_bytes
                # and ws_max_size get an `error` reply, larger ones close the connection
                ws_ping_interval=stream.heartbeat_s, ws_ping_timeout=stream.client_timeout_s,
                ws_max_size=max(1 << 20, 16 * stream.max_message_bytes))


def _check_exposure(settings: Settings) -> None:
    """Refuse (exit 2) to serve beyond loopback with no token, unless --insecure."""
    from seismo.auth import has_active_tokens, is_loopback, open_bind_problem, requires_tokens

    if not requires_tokens(settings.host, settings.insecure):
        if settings.insecure and not is_loopback(settings.host):
            typer.echo(f"warning: --insecure: while no token exists, anyone who can reach "
                       f"{settings.host} may read and change everything", err=True)
        return
    try:
        has_tokens = has_active_tokens(settings.data_dir / "state.db")
    except (sqlite3.Error, OSError) as exc:
        fail(f"cannot read the tokens in {settings.data_dir}: {exc}", 2)
    problem = open_bind_problem(settings.host, settings.insecure, has_tokens)
    if problem is not None:
        fail(problem, 2)


def _log_config() -> dict[str, Any]:
    """uvicorn's own logging setup, with token secrets masked on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "seismo.auth.redact.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config


token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API tokens.")
app.add_typer(token_app, name="token")
DATA_DIR_OPTION = typer.Option("--data-dir", help="store directory [./seismo-data]")
CONFIG_OPTION = typer.Option("--config", help="seismo.yaml (for data_dir)")


@token_app.callback()
def _token_root() -> None:
    """Create, list and revoke API tokens in the data dir, whether a server runs or not."""


def _token_store(data_dir: Path | None, config: Path | None) -> TokenStore:
    from seismo.auth import TokenStore

    try:
        settings = load_settings(config, {"data_dir": data_dir})
    except SeismoError as exc:
        fail(exc.message, 2)
    try:
        return TokenStore(settings.data_dir / "state.db")
    except (sqlite3.Error, OSError) as exc:
        fail(f"cannot open the tokens in {settings.data_dir}: {exc}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="unique among active tokens, e.g. ci")],
    role: Annotated[str, typer.Option(help="viewer|operator|admin")],
    ingest_samples_per_s: Annotated[float | None, typer.Option(
        help="this token's ingest limit [default: limits.token_ingest_samples_per_s]; "
             "0: none")] = None,
    data_dir: Annotated[Path | None, DATA_DIR_OPTION] = None,
    config: Annotated[Path | None, CONFIG_OPTION] = None,
) -> None:
    """Create a token; print its secret (stdout, once) and what to do with it (stderr)."""
    store = _token_store(data_dir, config)
    try:
        record, secret = store.create(name, role, ingest_samples_per_s)
    except SeismoError as exc:
        fail(exc.message, 2)
    finally:
        store.close()
    typer.echo(secret)
    typer.echo(f"created token {record.id} {record.name!r} with role {record.role}; store "
               "the secret now, it cannot be shown again", err=True)


@token_app.command("list")
def token_list(
    data_dir: Annotated[Path | None, DATA_DIR_OPTION] = None,
    config: Annotated[Path | None, CONFIG_OPTION] = None,
) -> None:
    """List tokens (revoked ones too): id, name, role, created, last used, revoked."""
    from rich.console import Console
    from rich.table import Table

    store = _token_store(data_dir, config)
    try:
        records = store.list()
    finally:
        store.close()
    if not records:
        typer.echo("no tokens: auth is off and the server only serves loopback")
        return
    table = Table()
    for column in ("id", "name", "role", "created", "last used", "revoked"):
        table.add_column(column, no_wrap=True)
    for r in records:
        table.add_row(str(r.id), r.name, str(r.role), _when(r.created_ms),
                      _when(r.last_used_ms), _when(r.revoked_ms))
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    Console(width=160 if wide else None).print(table)


@token_app.command("revoke")
def token_revoke(
    ref: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="token id or name")],
    data_dir: Annotated[Path | None, DATA_DIR_OPTION] = None,
    config: Annotated[Path | None, CONFIG_OPTION] = None,
) -> None:
    """Revoke a token; a running server refuses it within a second."""
    store = _token_store(data_dir, config)
    try:
        record = store.revoke(ref)
    except SeismoError as exc:
        fail(exc.message)
    finally:
        store.close()
    typer.echo(f"revoked token {record.id} {record.name!r}")


def _when(ts_ms: int | None) -> str:
    import datetime

    if ts_ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


URL_OPTION = typer.Option("--url", help="seismo server")
TOKEN_OPTION = typer.Option("--token", help="API token, sent as Bearer")
PUSH_BATCH_ROWS = 5_000


@app.command()
def push(
    metric: Annotated[str | None, typer.Argument(help="metric name")] = None,
    value: Annotated[float | None, typer.Argument(help="value")] = None,
    label: Annotated[list[str] | None,
                     typer.Option("--label", "-l", help="k=v, repeatable")] = None,
    timestamp: Annotated[int | None, typer.Option(help="epoch ms [default: now]")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help=".csv or .jsonl")] = None,
    url: Annotated[str, URL_OPTION] = "http://127.0.0.1:8765",
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Push one value, or a CSV / JSON-lines file; exit 1 if any sample was rejected."""
    from seismo.client import Client

    if (file is None) == (metric is None):
        fail("give either METRIC VALUE or --file", 2)
    try:
        with Client(url, token) as client:
            if file is not None:
                _push_file(client, file)
                return
            if metric is None or value is None:
                fail("VALUE is missing", 2)
                return
            labels = dict(_label_pair(text) for text in label or [])
            reply = client.push(samples=[{"metric": metric, "labels": labels,
                                          "timestamp": timestamp, "value": value}])
    except (SeismoError, OSError) as exc:
        fail(exc.message if isinstance(exc, SeismoError) else str(exc))
        return
    if reply["rejected"]:
        fail(f"sample rejected: {reply['errors'][0]['reason']}")
    typer.echo(f"accepted {reply['accepted']}")


@app.command()
def query(
    selector: Annotated[str, typer.Argument(help='e.g. cpu_usage{host=~"web.*"}')],
    window: Annotated[str, typer.Option(help="window of the stats")] = "5m",
    range_: Annotated[str | None, typer.Option("--range", help="e.g. 1h: show buckets")] = None,
    step: Annotated[str | None, typer.Option(help="bucket size [default: range/500]")] = None,
    agg: Annotated[str, typer.Option(help="avg|min|max|sum|count|p50|p95|p99|rate")] = "avg",
    url: Annotated[str, URL_OPTION] = "http://127.0.0.1:8765",
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Latest value and window stats; with --range, values in step buckets."""
    from rich.console import Console

    from seismo.client import Client

    try:
        with Client(url, token) as client:
            if range_ is None:
                table = _instant_table(client.query(selector, window), window)
            else:
                reply = client.query_range(selector, start=f"now-{range_}", step=step, agg=agg)
                table = _range_table(reply["series"], agg)
    except SeismoError as exc:
        fail(exc.message)
        return
    if table is None:
        typer.echo(f"no series match {selector}")
        return
    # Piped output is not cut to 80 columns; a terminal or $COLUMNS sets the width.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    Console(width=160 if wide else None).print(table)


@app.command()
def tail(
    selector: Annotated[str | None, typer.Argument(
        help='e.g. cpu_usage{host="a"}; required for samples')] = None,
    topic: Annotated[str, typer.Option(help="samples|events|anomalies|alerts|stats")] = "samples",
    url: Annotated[str, URL_OPTION] = "http://127.0.0.1:8765",
    token: Annotated[str | None, TOKEN_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="raw JSON messages")] = False,
    count: Annotated[int | None, typer.Option(min=1, help="exit after N messages")] = None,
) -> None:
    """Print the live stream: one line per sample, or per message of other topics."""
    import asyncio

    from seismo.tail import SELECTOR_TOPICS, TOPICS
    from seismo.tail import tail as follow

    if topic not in TOPICS:
        fail(f"--topic must be one of {', '.join(TOPICS)}", 2)
    if topic == "samples" and not selector:
        fail("topic samples needs a SELECTOR, e.g. 'cpu_usage{host=\"a\"}'", 2)
    if selector and topic not in SELECTOR_TOPICS:
        fail(f"topic {topic} takes no SELECTOR", 2)
    try:
        asyncio.run(follow(url, token, topic, selector, as_json=as_json, count=count,
                           out=sys.stdout, err=sys.stderr))
    except KeyboardInterrupt:
        return
    except SeismoError as exc:
        fail(exc.message)
    except BrokenPipeError:  # `seismo tail ... | head`: the reader is gone, so are we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(help="CSV with columns timestamp,value")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="CSV to write [stdout]")] = None,
    sensitivity: Annotated[float, typer.Option(help="> 1: more anomalies")] = 1.0,
    seasonality: Annotated[str, typer.Option(help="auto|on|off")] = "auto",
    batch_rows: Annotated[int, typer.Option(min=1, help="rows per batch")] = 100,
) -> None:
    """Score a timestamp,value file with the live engine's detectors; write per-row scores."""
    import dataclasses

    from rich.console import Console
    from rich.progress import Progress

    from seismo.detect import DetectConfig, detect_series, read_series, write_scores

    try:
        config = dataclasses.replace(DetectConfig(), sensitivity=sensitivity,
                                     seasonality=seasonality)  # type: ignore[arg-type]
        data = read_series(file)
    except ValueError as exc:
        fail(str(exc), 2)
    except SeismoError as exc:
        fail(exc.message, 2)
    with Progress(console=Console(stderr=True), transient=True,
                  disable=len(data.values) < 20_000) as progress:
        task = progress.add_task(f"scoring {file.name}", total=len(data.values))
        scores = detect_series([(data.ts, data.values)], config, batch_rows,
                               on_batch=lambda n: progress.advance(task, n))[0]
    try:
        write_scores(out if out is not None else sys.stdout, data, scores)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    found = int((scores.score >= config.min_score).sum())
    typer.echo(f"{len(data.values)} rows, {found} anomalies (score >= {config.min_score})",
               err=True)

def _label_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        fail(f"--label {text!r} must look like name=value", 2)
    return name, value


def _series_name(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}" if inner else metric


def _number(value: float | None) -> str:
    """Four significant digits; k/M/G/T from 10,000 up so that columns stay narrow."""
    if value is None:
        return "-"
    if abs(value) >= 1e4:
        for suffix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= size:
                return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def _clock(ts_ms: int | None) -> str:
    import datetime

    if ts_ms is None:
        return "-"
    at = datetime.datetime.fromtimestamp(ts_ms / 1000)
    today = at.date() == datetime.date.today()
    return at.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S")


def _age(ts_ms: int | None) -> str:
    """How long ago, e.g. `3s`, `5m`, `2h`, `4d`."""
    if ts_ms is None:
        return "-"
    from seismo.engine import now_ms

    ago_s = max(now_ms() - ts_ms, 0) / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if ago_s >= size:
            return f"{ago_s // size:.0f}{unit}"
    return f"{ago_s:.0f}s"


def _instant_table(series: list[dict[str, Any]], window: str) -> Table | None:
    from rich.table import Table

    if not series:
        return None
    table = Table(title=f"latest value and stats over {window}")
    table.add_column("series", overflow="fold")
    table.add_column("age", justify="right", no_wrap=True)
    for name in ("value", "count", "mean", "min", "max", "p95", "rate"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in series:
        w = s["window"]
        table.add_row(
            _series_name(s["metric"], s["labels"]), _age(s["timestamp"]), _number(s["value"]),
            str(w["count"]), *(_number(w.get(k)) for k in ("mean", "min", "max", "p95", "rate")),
        )
    return table


def _range_table(series: list[dict[str, Any]], agg: str) -> Table | None:
    """One column per series when there are a few, else one row per (series, bucket)."""
    from rich.table import Table

    if not series:
        return None
    table = Table(title=f"{agg} per step")
    table.add_column("time", no_wrap=True)
    if len(series) <= 6:
        cells: dict[int, dict[int, float | None]] = {}
        for i, s in enumerate(series):
            table.add_column(_series_name(s["metric"], s["labels"]), justify="right",
                             overflow="fold")
            for ts, value in zip(s["timestamps"], s["values"], strict=True):
                cells.setdefault(ts, {})[i] = value
        for ts in sorted(cells):
            table.add_row(_clock(ts), *(_number(cells[ts].get(i)) for i in range(len(series))))
        return table
    table.add_column("series", overflow="fold", ratio=1)
    table.add_column(agg, justify="right", no_wrap=True)
    for s in series:
        name = _series_name(s["metric"], s["labels"])
        for ts, value in zip(s["timestamps"], s["values"], strict=True):
            table.add_row(_clock(ts), name, _number(value))
    return table


def _push_file(client: Client, path: Path) -> None:
    """Push a file in batches of PUSH_BATCH_ROWS rows with a progress bar; print the totals."""
    from rich.console import Console
    from rich.progress import Progress

    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        fail(f"{path}: use a .csv or .jsonl file", 2)
    rows = _csv_rows(path) if suffix == ".csv" else _jsonl_rows(path)
    with path.open("rb") as f:
        total = sum(1 for _ in f) - (1 if suffix == ".csv" else 0)
    accepted, rejected = 0, 0
    problems: list[str] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"pushing {path.name}", total=max(total, 0))
        batch: list[dict[str, Any]] = []
        lines: list[int] = []

        def send() -> None:
            nonlocal accepted, rejected
            reply = client.push(samples=batch)
            accepted += reply["accepted"]
            rejected += reply["rejected"]
            problems.extend(f"line {lines[e['index']]}: {e['reason']}"
                            for e in reply["errors"] if "index" in e)
            progress.advance(task, len(batch))
            batch.clear()
            lines.clear()

        for line, row in rows:
            if isinstance(row, str):
                rejected += 1
                problems.append(f"line {line}: {row}")
                progress.advance(task)
                continue
            batch.append(row)
            lines.append(line)
            if len(batch) >= PUSH_BATCH_ROWS:
                send()
        if batch:
            send()
    typer.echo(f"accepted {accepted}, rejected {rejected}")
    for problem in problems[:10]:
        typer.echo(f"  {problem}", err=True)
    if rejected:
        raise typer.Exit(1)


Row = tuple[int, dict[str, Any] | str]  # (line number, sample or why it is unreadable)


def _csv_rows(path: Path) -> Iterator[Row]:
    """CSV with columns metric, value and optional timestamp; other columns are labels."""
    import csv

    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "metric" not in fields or "value" not in fields:
            fail(f"{path}: the header must name the columns metric and value", 2)
        for row in reader:
            line = reader.line_num
            try:
                value = float(row["value"])
                ts = row.get("timestamp") or None
                timestamp = None if ts is None else int(ts)
            except (TypeError, ValueError):
                yield line, "value or timestamp is not a number"
                continue
            labels = {k: v for k, v in row.items()
                      if k not in {"metric", "value", "timestamp"} and k and v}
            yield line, {"metric": row["metric"], "labels": labels, "timestamp": timestamp,
                         "value": value}


def _jsonl_rows(path: Path) -> Iterator[Row]:
    """JSON lines, each `{"metric", "labels", "timestamp", "value"}`."""
    import json

    with path.open() as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as exc:
                yield line, f"not JSON: {exc}"
                continue
            problem = _row_problem(row)
            if problem:
                yield line, problem
                continue
            yield line, {"metric": row["metric"], "labels": row.get("labels") or {},
                         "timestamp": row.get("timestamp"), "value": row["value"]}


def _row_problem(row: Any) -> str | None:
    """Why a decoded JSON line is not a sample, or None; the server would refuse the batch."""
    if not isinstance(row, dict):
        return "not a JSON object"
    if not isinstance(row.get("metric"), str):
        return "metric is missing or not a string"
    value = row.get("value", "missing")
    if isinstance(value, bool) or not isinstance(value, int | float | None):
        return "value is missing or not a number"
    ts = row.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | None):
        return "timestamp is not an integer (epoch ms)"
    labels = row.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        return "labels must be an object of strings"
    return None


@app.command()
def mcp(
    url: Annotated[str | None, typer.Option(
        "--url", help="a running seismo server; tools call its REST API")] = None,
    token: Annotated[str | None, TOKEN_OPTION] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="run an engine of its own on this store (not one a server is using)")] = None,
    config: Annotated[Path | None, typer.Option(help="seismo.yaml (with --data-dir)")] = None,
    no_collector: Annotated[bool, typer.Option("--no-collector", help="no host metrics")]
    = False,
) -> None:
    """Serve MCP on stdio (Claude Desktop, MCP clients): against --url, or on --data-dir."""
    import anyio

    from seismo.mcp.stdio import serve_embedded, serve_remote

    if (url is None) == (data_dir is None):
        fail("give either --url (a running server) or --data-dir (an engine of its own)", 2)
    # stdout carries the protocol: every log line goes to stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if url is not None:
        anyio.run(serve_remote, url, token)
        return
    try:
        settings = load_settings(config, {"data_dir": data_dir,
                                          "collector": False if no_collector else None})
    except SeismoError as exc:
        fail(exc.message, 2)
    try:
        anyio.run(serve_embedded, settings)
    except (SeismoError, OSError) as exc:
        fail(f"cannot open the store in {settings.data_dir}: {exc}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


# Registered last: these command modules import the options and helpers above.
from seismo.alert_cli import alerts_app, silence_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")


if __name__ == "__main__":
    main()

