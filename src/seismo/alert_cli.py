"""`seismo alerts ...` and `seismo silence ...`: the alerting API from a terminal.

Each command is one `Client` call (see `seismo.client`); errors print one line and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from seismo.cli import TOKEN_OPTION, URL_OPTION, _label_pair, _when, fail
from seismo.errors import SeismoError

T = TypeVar("T")
alerts_app: typer.Typer = typer.Typer(
    no_args_is_help=True, help="List, raise, acknowledge and resolve alerts.")
silence_app: typer.Typer = typer.Typer(no_args_is_help=True, help="Add, list and expire silences.")
DEFAULT_URL = "http://127.0.0.1:8765"


def _call(url: str, token: str | None, action: Callable[[Any], T]) -> T:
    from seismo.client import Client

    try:
        with Client(url, token) as client:
            return action(client)
    except SeismoError as exc:
        fail(exc.message)


def _print(table: Any) -> None:
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    Console(width=160 if wide else None).print(table)


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                     if k not in ("alertname", "severity"))


@alerts_app.command("list")
def alerts_list(
    state: Annotated[str | None, typer.Option(help="pending,firing,acknowledged,resolved")] = None,
    severity: Annotated[str | None, typer.Option(help="critical,high,medium,low,info")] = None,
    rule: Annotated[str | None, typer.Option(help="only this rule's alerts")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Alerts, most recently changed first."""
    from rich.table import Table

    alerts = _call(url, token, lambda c: c.alerts(state=state, severity=severity, rule=rule,
                                                  limit=limit))
    if not alerts:
        typer.echo("no alerts")
        return
    table = Table("id", "alert", "severity", "state", "labels", "value", "since")
    for a in alerts:
        since = a["fired_ms"] or a["started_ms"]
        value = "" if a["value"] is None else f"{a['value']:g}"
        table.add_row(a["id"], a["labels"].get("alertname", a["rule"]), a["severity"],
                      a["state"], _labels(a["labels"]), value, _when(since))
    _print(table)


@alerts_app.command("raise")
def alerts_raise(
    name: Annotated[str, typer.Argument(help="alert name (labels.alertname)")],
    label: Annotated[list[str] | None,
                     typer.Option("--label", "-l", help="k=v, repeatable")] = None,
    summary: Annotated[str | None, typer.Option(help="annotation summary")] = None,
    severity: Annotated[str, typer.Option(help="critical|high|medium|low|info")] = "high",
    ends_at: Annotated[str | None, typer.Option(help="resolve by itself then, e.g. now+1h")] = None,
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Raise a custom alert; raising it again refreshes it."""
    labels = dict(_label_pair(t) for t in label or [])
    annotations = {"summary": summary} if summary else {}
    alert = _call(url, token, lambda c: c.raise_alert(
        name, labels=labels, annotations=annotations, severity=severity, ends_at=ends_at))
    typer.echo(f"{alert['id']} {alert['state']}")


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Acknowledge a firing alert (no more repeats or escalation)."""
    alert = _call(url, token, lambda c: c.acknowledge(alert_id, comment))
    typer.echo(f"{alert['id']} acknowledged by {alert['ack_by']}")


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Resolve an active alert by hand."""
    alert = _call(url, token, lambda c: c.resolve(alert_id, comment))
    typer.echo(f"{alert['id']} resolved by {alert['resolved_by']}")


@alerts_app.command("rules")
def alerts_rules(
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Every rule: name, expression, severity, where it is defined."""
    from rich.table import Table

    rules = _call(url, token, lambda c: c.rules())
    table = Table("rule", "expr", "for", "severity", "source")
    for r in rules:
        table.add_row(r["name"], r["expr"], r["for"], r["severity"], r["source"])
    _print(table)


@silence_app.command("add")
def silence_add(
    matcher: Annotated[list[str], typer.Option("--matcher", "-m",
                                               help="label=value or label=~regex, repeatable")],
    duration: Annotated[str, typer.Option(help="how long, e.g. 2h")] = "1h",
    comment: Annotated[str, typer.Option(help="why")] = "",
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Silence the alerts whose labels match every matcher."""
    matchers = []
    for text in matcher:
        name, value = _label_pair(text)
        is_regex = value.startswith("~")
        matchers.append({"name": name, "value": value[1:] if is_regex else value,
                         "isRegex": is_regex, "isEqual": True})
    silence = _call(url, token, lambda c: c.add_silence(
        matchers, ends_at=f"now+{duration}", comment=comment))
    typer.echo(f"silence {silence['id']} until {_when(silence['ends_at_ms'])}")


@silence_app.command("list")
def silence_list(
    state: Annotated[str | None, typer.Option(help="pending|active|expired")] = None,
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Silences, with their matchers and times."""
    from rich.table import Table

    silences = _call(url, token, lambda c: c.silences(state))
    table = Table("id", "state", "matchers", "ends", "by", "comment")
    for s in silences:
        matchers = ", ".join(f"{m['name']}{'=~' if m['isRegex'] else '='}{m['value']}"
                             for m in s["matchers"])
        table.add_row(s["id"], s["state"], matchers, _when(s["ends_at_ms"]),
                      s["created_by"], s["comment"])
    _print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(metavar="ID")],
    url: Annotated[str, URL_OPTION] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """End a silence now."""
    silence = _call(url, token, lambda c: c.expire_silence(silence_id))
    typer.echo(f"silence {silence['id']} {silence['state']}")
