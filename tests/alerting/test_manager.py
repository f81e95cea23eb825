"""The alert manager: routing, grouping timers, muting, escalation, cooldown, rate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seismo.alerting.manager import AlertManager
from seismo.alerting.routes import InhibitRule, parse_inhibit_rules, parse_routes
from seismo.alerting.silences import SilenceStore
from seismo.notify.message import Alert, AlertStatus, Notification, Reason, fingerprint_of

T0 = 1_800_000_000_000
S, MIN, HOUR = 1000, 60_000, 3600_000
FIRST, NEW, RESOLVED, REPEAT = Reason.FIRST, Reason.NEW_ALERTS, Reason.RESOLVED, Reason.REPEAT


class Clock:
    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Outbox:
    """Records what the manager sends, as `send`."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def __call__(self, channel: str, notification: Notification) -> None:
        assert channel == notification.receiver
        self.sent.append(notification)

    def take(self) -> list[Notification]:
        sent, self.sent = self.sent, []
        return sent


def alert(name: str = "HighCPU", severity: str = "high", status: AlertStatus = "firing",
          starts_at_ms: int = T0, **labels: str) -> Alert:
    full = {"alertname": name, "severity": severity, **labels}
    return Alert(fingerprint_of(full), status, full, {"summary": f"{name} {labels}"},
                 starts_at_ms=starts_at_ms)


def resolved(a: Alert) -> Alert:
    return Alert(a.fingerprint, "resolved", a.labels, a.annotations, a.starts_at_ms)


def fps(n: Notification, status: str | None = None) -> set[str]:
    return {a.fingerprint for a in n.alerts if status is None or a.status == status}


class Harness:
    def __init__(self, routes: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        self.clock = Clock()
        self.out = Outbox()
        parsed = parse_routes(routes if routes is not None else [{"channels": ["oncall"]}])
        self.manager = AlertManager(parsed, send=self.out, clock=self.clock, **kwargs)

    def receive(self, a: Alert, acknowledged: bool = False) -> list[Notification]:
        self.manager.receive(a, acknowledged=acknowledged)
        return self.out.take()

    def advance(self, ms: int, step_ms: int = 250) -> list[Notification]:
        """Let `ms` pass, ticking every `step_ms` as the engine does."""
        end = self.clock.now_ms + ms
        while self.clock.now_ms < end:
            self.clock.now_ms = min(end, self.clock.now_ms + step_ms)
            self.manager.tick()
        return self.out.take()


# -- routing --------------------------------------------------------------------------------


def test_first_matching_route_then_on_while_continue() -> None:
    h = Harness([
        {"match": {"severity": "critical"}, "channels": ["pager"], "continue": True},
        {"match": {"team": "db"}, "channels": ["db"]},
        {"match_re": {"team": "db|web"}, "channels": ["never"]},
    ], default_channels=("catchall",))
    sent = h.receive(alert(severity="critical", team="db"))
    assert {n.receiver for n in sent} == {"pager", "db"}
    sent = h.receive(alert("DiskFull", severity="critical", team="web")) + h.advance(10 * S)
    assert {n.receiver for n in sent} == {"pager", "never"}
    sent = h.receive(alert("Slow", team="db")) + h.advance(10 * S)
    assert [n.receiver for n in sent] == ["db"]
    sent = h.receive(alert("Slow", team="ml")) + h.advance(10 * S)
    assert [n.receiver for n in sent] == ["catchall"]
    assert sent[0].group_key == '{}:{alertname="Slow"}'


def test_no_route_and_no_default_channel_means_listed_but_not_sent() -> None:
    h = Harness([{"match": {"team": "db"}, "channels": ["db"]}])
    a = alert(severity="critical", team="ml")
    assert h.receive(a) == [] and h.advance(HOUR) == []
    [group] = h.manager.groups()
    assert group["route"] is None and group["channels"] == [] and group["alerts"] == \
        [a.fingerprint]


# -- grouping and timers --------------------------------------------------------------------


def test_alerts_of_one_group_wait_10s_and_go_together() -> None:
    h = Harness()
    a, b = alert(host="a"), alert(host="b")
    assert h.receive(a) == []
    h.advance(5 * S)
    assert h.receive(b) == []
    assert h.advance(4 * S) == []
    [n] = h.advance(1 * S)
    assert n.reason is FIRST and n.receiver == "oncall" and fps(n) == {a.fingerprint,
                                                                       b.fingerprint}
    assert n.group_labels == {"alertname": "HighCPU"} and n.ts_ms == T0 + 10 * S
    assert n.group_key == '{}/{}:{alertname="HighCPU"}'
    assert n.title == "[FIRING:2] HighCPU (high)"


def test_a_critical_alert_is_sent_inside_receive() -> None:
    h = Harness()
    [n] = h.receive(alert(severity="critical"))
    assert n.reason is FIRST and n.ts_ms == T0


def test_a_critical_alert_cuts_short_a_waiting_group() -> None:
    h = Harness()
    h.receive(alert(host="a"))
    h.advance(2 * S)
    [n] = h.receive(alert(host="b", severity="critical"))
    assert n.reason is FIRST and len(n.alerts) == 2


def test_an_explicit_group_wait_applies_to_critical_too() -> None:
    h = Harness([{"channels": ["oncall"], "group_wait": "30s"}])
    assert h.receive(alert(severity="critical")) == []
    assert h.advance(29 * S) == []
    assert [n.reason for n in h.advance(1 * S)] == [FIRST]


def test_later_alerts_are_batched_to_group_interval() -> None:
    h = Harness()
    a, b, c = alert(host="a", severity="critical"), alert(host="b"), alert(host="c")
    assert len(h.receive(a)) == 1
    h.advance(1 * MIN)
    h.receive(b)
    h.advance(1 * MIN)
    h.receive(c)
    assert h.advance(3 * MIN - 250) == []
    [n] = h.advance(250)
    assert n.reason is NEW and n.ts_ms == T0 + 5 * MIN
    assert fps(n, "firing") == {a.fingerprint, b.fingerprint, c.fingerprint}
    assert h.advance(5 * MIN) == []  # nothing changed


def test_repeat_after_repeat_interval_while_firing() -> None:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m", "repeat_interval": "1h"}])
    a = alert(severity="critical")
    h.receive(a)
    assert h.advance(HOUR - S, step_ms=S) == []
    [n] = h.advance(S)
    assert n.reason is REPEAT and fps(n) == {a.fingerprint} and n.ts_ms == T0 + HOUR
    assert [x.reason for x in h.advance(HOUR, step_ms=S)] == [REPEAT]


def test_acknowledged_alerts_are_not_repeated() -> None:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m", "repeat_interval": "1h"}])
    a, b = alert(host="a", severity="critical"), alert(host="b", severity="critical")
    h.receive(a)
    h.receive(b)
    h.advance(1 * MIN)  # b joined: new_alerts
    h.receive(a, acknowledged=True)
    [n] = h.advance(HOUR, step_ms=S)
    assert n.reason is REPEAT and fps(n) == {b.fingerprint}
    h.receive(b, acknowledged=True)
    h.receive(b)  # a later change (annotations) does not take the acknowledgement back
    assert h.advance(3 * HOUR, step_ms=10 * S) == []


def test_a_resolve_is_sent_once_and_the_group_goes_away() -> None:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m"}])
    a, b = alert(host="a", severity="critical"), alert(host="b", severity="critical")
    h.receive(a)
    h.receive(b)
    h.advance(1 * MIN)
    h.advance(10 * S)
    assert h.receive(resolved(a)) == []
    [n] = h.advance(1 * MIN)
    assert n.reason is RESOLVED and n.status == "firing"
    assert fps(n, "resolved") == {a.fingerprint} and fps(n, "firing") == {b.fingerprint}
    assert h.advance(10 * MIN) == []
    h.receive(resolved(b))
    [n] = h.advance(1 * MIN)
    assert n.reason is RESOLVED and n.status == "resolved" and fps(n) == {b.fingerprint}
    assert h.advance(HOUR) == [] and h.manager.groups() == []


def test_an_adopted_alert_is_not_sent_again_but_its_resolve_is() -> None:
    """After a restart the engine adopts alerts that already fired: no duplicate `first`."""
    h = Harness([{"channels": ["oncall"], "group_interval": "1m", "repeat_interval": "1h"}])
    a = alert(host="a", severity="critical")
    h.manager.adopt(a)
    assert h.advance(30 * MIN) == []
    [n] = h.advance(31 * MIN)
    assert n.reason is REPEAT and fps(n) == {a.fingerprint}
    h.receive(resolved(a))
    [n] = h.advance(1 * MIN)
    assert n.reason is RESOLVED and fps(n, "resolved") == {a.fingerprint}


def test_an_alert_resolved_before_it_was_notified_is_never_sent() -> None:
    h = Harness()
    a = alert()
    h.receive(a)
    h.advance(5 * S)
    h.receive(resolved(a))
    assert h.advance(HOUR) == [] and h.manager.groups() == []
    assert h.receive(resolved(alert("Unknown"))) == []


def test_send_resolved_false_skips_resolves_for_that_channel() -> None:
    h = Harness([{"channels": ["oncall", "chat"], "group_interval": "1m"}],
                send_resolved={"chat": False})
    a = alert(severity="critical")
    assert {n.receiver for n in h.receive(a)} == {"oncall", "chat"}
    h.receive(resolved(a))
    [n] = h.advance(1 * MIN)
    assert n.receiver == "oncall" and n.reason is RESOLVED
    assert h.manager.groups() == []


def test_a_failed_send_is_retried_at_the_next_flush() -> None:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m"}])
    calls: list[Notification] = []

    def flaky(channel: str, n: Notification) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise OSError("connection refused")

    h.manager._send = flaky
    h.receive(alert(severity="critical"))
    h.advance(1 * MIN)
    assert [n.reason for n in calls] == [FIRST, FIRST]


# -- silences and inhibition ----------------------------------------------------------------


@pytest.fixture
def silences(tmp_path: Path) -> SilenceStore:
    return SilenceStore(tmp_path / "state.db", Clock())


def with_silences(store: SilenceStore, **kwargs: Any) -> Harness:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m"}], silences=store, **kwargs)
    store.clock = h.clock
    return h


def test_a_silenced_alert_is_not_sent_until_the_silence_ends(silences: SilenceStore) -> None:
    h = with_silences(silences)
    silence = silences.add({"matchers": {"alertname": "HighCPU"}, "duration": "10m"}, "alice")
    a, other = alert(severity="critical"), alert("DiskFull", severity="critical")
    assert h.receive(a) == []
    assert [fps(n) for n in h.receive(other)] == [{other.fingerprint}]
    assert h.manager.marks(a.labels) == {"silenced_by": [silence.id], "inhibited_by": []}
    assert h.advance(9 * MIN) == []
    [n] = h.advance(2 * MIN)  # the silence ended at 10 min; the next flush sends
    assert n.reason is FIRST and fps(n) == {a.fingerprint}


def test_expiring_a_silence_by_hand_lets_the_alert_through(silences: SilenceStore) -> None:
    h = with_silences(silences)
    silence = silences.add({"matchers": [{"name": "host", "value": "web-.*", "isRegex": True}],
                            "duration": "1h"}, "alice")
    a = alert(host="web-1", severity="critical")
    h.receive(a)
    assert h.advance(5 * MIN) == []
    silences.expire(silence.id)
    [n] = h.advance(1 * MIN)
    assert n.reason is FIRST and h.manager.marks(a.labels)["silenced_by"] == []


def test_a_resolve_is_sent_even_if_the_alert_was_silenced_since(silences: SilenceStore) -> None:
    h = with_silences(silences)
    a = alert(severity="critical")
    assert len(h.receive(a)) == 1
    silences.add({"matchers": {"alertname": "HighCPU"}, "duration": "1h"}, "alice")
    assert h.advance(30 * MIN) == []  # silenced: no repeat, no news
    h.receive(resolved(a))
    [n] = h.advance(1 * MIN)
    assert n.reason is RESOLVED and fps(n, "resolved") == {a.fingerprint}


INHIBIT = parse_inhibit_rules([{"source_match": {"severity": "critical"},
                                "target_match_re": {"severity": "high|medium"},
                                "equal": ["host"]}])


def test_a_critical_alert_inhibits_lesser_ones_on_the_same_host() -> None:
    h = Harness([{"channels": ["oncall"], "group_by": ["alertname", "host"],
                  "group_interval": "1m"}], inhibit_rules=INHIBIT)
    source = alert("NodeDown", severity="critical", host="a")
    target, elsewhere = alert(host="a"), alert(host="b")
    assert len(h.receive(source)) == 1
    h.receive(target)
    h.receive(elsewhere)
    [n] = h.advance(10 * S)
    assert fps(n) == {elsewhere.fingerprint}
    assert h.manager.marks(target.labels) == {"silenced_by": [],
                                              "inhibited_by": [source.fingerprint]}
    assert h.manager.marks(source.labels)["inhibited_by"] == []
    assert h.advance(10 * MIN) == []
    h.receive(resolved(source))  # inhibition ends with its source
    sent = h.advance(1 * MIN)
    assert {(n.reason, frozenset(fps(n))) for n in sent} == {
        (RESOLVED, frozenset({source.fingerprint})), (FIRST, frozenset({target.fingerprint}))}


def test_an_alert_does_not_inhibit_itself() -> None:
    rules = [InhibitRule(source_match_re={"severity": "critical|high"},
                         target_match_re={"severity": "high|low"}, equal=("host",))]
    h = Harness(inhibit_rules=rules)
    a = alert(host="a")  # high: both a source and a target
    h.receive(a)
    [n] = h.advance(10 * S)
    assert fps(n) == {a.fingerprint}
    # Two-sided: a `high` source does not inhibit a `high` target (Alertmanager's rule) ...
    b = alert("Other", host="a")
    h.receive(b)
    assert len(h.advance(10 * S)) == 1
    # ... but a `low` target on the same host is.
    c = alert("Third", severity="low", host="a")
    assert h.manager.marks(c.labels)["inhibited_by"] == sorted([a.fingerprint, b.fingerprint])


# -- escalation and cooldown ----------------------------------------------------------------

ESCALATING = [{"channels": ["team"], "group_interval": "1m", "repeat_interval": "24h",
               "escalate": [{"after": "15m", "channels": ["manager"], "severity": "critical"},
                            {"after": "1h", "channels": ["director"]}]}]


def test_an_unacknowledged_alert_escalates() -> None:
    h = Harness(ESCALATING)
    a = alert(severity="high", starts_at_ms=T0)
    h.receive(a)
    assert [n.receiver for n in h.advance(10 * S)] == ["team"]
    assert h.advance(15 * MIN - 10 * S - 250) == []
    [n] = h.advance(250)
    assert n.receiver == "manager" and n.reason is FIRST and n.ts_ms == T0 + 15 * MIN
    [copy] = n.alerts
    assert copy.fingerprint == a.fingerprint
    assert copy.labels == {**a.labels, "escalated": "1", "severity": "critical"}
    [n] = h.advance(45 * MIN)
    assert n.receiver == "director" and n.alerts[0].labels["severity"] == "high"
    h.receive(resolved(a))
    assert {n.receiver for n in h.advance(1 * MIN)} == {"team", "manager", "director"}


def test_an_acknowledged_alert_does_not_escalate() -> None:
    h = Harness(ESCALATING)
    a = alert(severity="critical")
    h.receive(a)
    h.advance(5 * MIN)
    h.receive(a, acknowledged=True)
    assert h.advance(2 * HOUR, step_ms=S) == []


def test_escalation_counts_from_when_the_alert_started() -> None:
    h = Harness(ESCALATING)
    a = alert(severity="critical", starts_at_ms=T0 - 20 * MIN)  # fired before we heard
    assert [n.receiver for n in h.receive(a)] == ["team", "manager"]


COOLDOWN = [{"channels": ["oncall"], "group_wait": "0s", "group_interval": "1m",
             "cooldown": "10m"}]


def test_a_flapping_alert_waits_out_its_cooldown() -> None:
    h = Harness(COOLDOWN)
    a = alert()
    assert [n.reason for n in h.receive(a)] == [FIRST]
    h.advance(30 * S)
    h.receive(resolved(a))  # at T0+30s
    assert [n.reason for n in h.advance(30 * S)] == [RESOLVED]
    h.advance(2 * MIN)
    assert h.receive(a) == []  # fires again at T0+3m: within 10 min of its resolve
    assert h.advance(7 * MIN + 30 * S - 250) == []
    [n] = h.advance(250)
    assert n.reason is FIRST and n.ts_ms == T0 + 10 * MIN + 30 * S
    h.receive(resolved(a))
    h.advance(1 * MIN)
    h.advance(11 * MIN)
    assert [n.reason for n in h.receive(a)] == [FIRST]  # after the cooldown: at once


def test_flapping_within_cooldown_keeps_it_quiet() -> None:
    h = Harness(COOLDOWN)
    a = alert()
    h.receive(a)
    h.receive(resolved(a))
    h.advance(1 * MIN)
    for _ in range(5):  # flaps every 2 minutes: never out for 10 minutes
        h.advance(1 * MIN)
        assert h.receive(a) == []
        h.advance(1 * MIN)
        h.receive(resolved(a))
    assert h.advance(30 * MIN) == []


# -- rate limits ----------------------------------------------------------------------------


def test_a_storm_is_rate_limited_and_nothing_is_lost() -> None:
    h = Harness([{"channels": ["pager"], "group_interval": "1m"}],
                channel_rate_per_minute={"pager": 10})
    storm = [alert(f"Alert{i}", severity="critical", host="a") for i in range(100)]
    sent: list[Notification] = []
    for a in storm:
        sent += h.receive(a)
    late = alert("Alert99", severity="critical", host="b")  # joins a held group
    sent += h.receive(late)
    sent += h.advance(1 * MIN - 250, step_ms=S)
    assert len(sent) == 10
    sent += h.advance(20 * MIN, step_ms=S)
    times = sorted(n.ts_ms for n in sent)
    assert all(b - a >= 1 * MIN for a, b in zip(times, times[10:], strict=False))
    delivered = [a.fingerprint for n in sent for a in n.alerts]
    assert sorted(delivered) == sorted(a.fingerprint for a in [*storm, late])  # once each
    assert len(sent) == 100  # one merged notification per group
    assert all(n.reason is FIRST for n in sent)


def test_a_fractional_rate_spaces_notifications() -> None:
    h = Harness([{"channels": ["pager"]}], channel_rate_per_minute={"pager": 0.5})
    sent: list[Notification] = []
    for i in range(3):
        sent += h.receive(alert(f"A{i}", severity="critical"))
    sent += h.advance(5 * MIN, step_ms=S)
    assert [n.ts_ms - T0 for n in sent] == [0, 2 * MIN, 4 * MIN]


# -- configuration and API views ------------------------------------------------------------


def test_set_config_keeps_groups_whose_route_is_unchanged() -> None:
    h = Harness([{"channels": ["oncall"], "group_interval": "1m"}])
    h.receive(alert(host="a", severity="critical"))
    [before] = h.manager.groups()
    h.manager.set_config(parse_routes([{"match": {"team": "db"}, "channels": ["db"]},
                                       {"channels": ["oncall"], "group_interval": "1m"}]))
    [after] = h.manager.groups()
    assert after["route"] == 1 and after["last_notified_ms"] == before["last_notified_ms"] == T0
    h.receive(alert(host="b"))
    assert [n.reason for n in h.advance(1 * MIN)] == [NEW]  # not `first` again
    h.manager.set_config(parse_routes([{"channels": ["pager"], "group_wait": "0s"}]))
    h.manager.tick()
    [n] = h.out.take()
    assert n.receiver == "pager" and n.reason is FIRST and len(n.alerts) == 2


def test_groups_view_for_the_api() -> None:
    h = Harness(ESCALATING)
    a = alert(severity="critical")
    h.receive(a)
    [group] = h.manager.groups()
    assert group == {"group_key": '{}/{}:{alertname="HighCPU"}', "route": 0,
                     "channels": ["team", "manager", "director"],
                     "group_labels": {"alertname": "HighCPU"}, "alerts": [a.fingerprint],
                     "last_notified_ms": T0, "next_flush_ms": T0 + MIN, "held_channels": []}


# -- the invariant, as a property -----------------------------------------------------------

OPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["fire", "resolve", "ack"]), st.integers(0, 5)),
    st.tuples(st.just("wait"), st.sampled_from([250, 5 * S, 30 * S, 2 * MIN, HOUR])),
), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, rate=st.sampled_from([None, 2.0]))
def test_every_firing_alert_is_told_once_as_new_and_every_told_alert_resolves(
        ops: list[tuple[str, int]], rate: float | None) -> None:
    h = Harness([{"match": {"alertname": "A0"}, "channels": ["x"], "group_interval": "1m",
                  "repeat_interval": "10m", "continue": True},
                 {"channels": ["y"], "group_by": ["host"], "group_interval": "1m",
                  "repeat_interval": "10m"}],
                channel_rate_per_minute={"x": rate, "y": rate} if rate else {})
    views: dict[str, set[str]] = {"x": set(), "y": set()}  # what each channel believes fires
    alerts = [alert(f"A{i % 2}", "critical" if i % 3 == 0 else "high", host=f"h{i // 2}")
              for i in range(6)]
    firing: set[int] = set()

    def check(sent: list[Notification]) -> None:
        for n in sent:
            view = views[n.receiver]
            assert n.alerts
            for a in n.alerts:
                if a.is_firing:
                    if a.fingerprint not in view:
                        assert n.reason in (FIRST, NEW), n
                    view.add(a.fingerprint)
                else:
                    assert a.fingerprint in view and n.reason is not REPEAT, n
                    view.discard(a.fingerprint)

    for op, arg in ops:
        if op == "fire":
            firing.add(arg)
            check(h.receive(alerts[arg]))
        elif op == "resolve" and arg in firing:
            firing.discard(arg)
            check(h.receive(resolved(alerts[arg])))
        elif op == "ack" and arg in firing:
            check(h.receive(alerts[arg], acknowledged=True))
        elif op == "wait":
            check(h.advance(arg, step_ms=max(250, arg // 8)))
    check(h.advance(10 * MIN, step_ms=5 * S))
    assert views["y"] == {alerts[i].fingerprint for i in firing}
    assert views["x"] == {alerts[i].fingerprint for i in firing if i % 2 == 0}
    for i in firing:
        check(h.receive(resolved(alerts[i])))
    check(h.advance(10 * MIN, step_ms=5 * S))
    assert views == {"x": set(), "y": set()}
    assert h.manager.groups() == []
