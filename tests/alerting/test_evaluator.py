"""The rule evaluator against crafted series: every rule type, hysteresis, for, absence."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.alerting.evaluator import Evaluator, compare
from seismo.alerting.rules import parse_rule
from seismo.alerting.state import AlertState
from seismo.store.anomalies import Anomaly
from seismo.store.batch import Batch
from seismo.store.head import Head
from seismo.store.series import SeriesIndex


class Clock:
    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class World:
    """A series index, a head (latest values) and an evaluator over them."""

    def __init__(self, *rules: dict) -> None:
        self.clock = Clock()
        self.index = SeriesIndex(100_000)
        self.head = Head()
        self.changes: list[tuple[str, str, str]] = []
        self.evaluator = Evaluator(self.index, lambda: self.head.latest, clock=self.clock,
                                   on_change=lambda t, tr: self.changes.append(
                                       (t.fingerprint, tr.to_state.value, t.alert.rule)))
        self.evaluator.set_rules([parse_rule(r) for r in rules])

    def push(self, metric: str, labels: dict, values: list[float], step_ms: int = 1000) -> None:
        """Samples at clock time (one step apart, the last at now), then evaluate."""
        slot = self.index.slot_for(metric, labels)
        n = len(values)
        ts = self.clock.ms - step_ms * np.arange(n - 1, -1, -1, dtype=np.int64)
        batch = Batch(np.full(n, slot, np.int32), np.full(n, 0, np.int64), ts,
                      np.asarray(values, np.float64))
        self.head.observe(batch.slots, batch.ts, batch.values)
        self.evaluator.on_batch(batch)

    def states(self) -> dict[str, str]:
        return {", ".join(f"{k}={v}" for k, v in sorted(t.labels.items())
                          if k not in ("alertname", "severity")): t.alert.state.value
                for t in self.evaluator.alerts.values()}


def test_compare_all_operators() -> None:
    values = np.array([1.0, 2.0, 3.0])
    assert compare(values, ">", 2.0).tolist() == [False, False, True]
    assert compare(values, ">=", 2.0).tolist() == [False, True, True]
    assert compare(values, "<", 2.0).tolist() == [True, False, False]
    assert compare(values, "<=", 2.0).tolist() == [True, True, False]
    assert compare(values, "==", 2.0).tolist() == [False, True, False]
    assert compare(values, "!=", 2.0).tolist() == [True, False, True]
    assert compare(np.array([np.nan]), "!=", 2.0).tolist() == [False]


def test_threshold_fires_per_series_and_resolves() -> None:
    w = World({"name": "HighCPU", "expr": 'cpu{host=~"web.*"} > 90', "severity": "critical",
               "labels": {"team": "infra"},
               "annotations": {"summary": "CPU {{ $value }} on {{ $labels.host }}"}})
    w.push("cpu", {"host": "web-1"}, [50, 95])
    w.push("cpu", {"host": "web-2"}, [50])
    w.push("cpu", {"host": "db-1"}, [99])  # not selected
    assert w.states() == {"host=web-1, team=infra": "firing"}
    tracked = next(iter(w.evaluator.alerts.values()))
    assert tracked.labels == {"host": "web-1", "team": "infra", "alertname": "HighCPU",
                              "severity": "critical"}
    assert tracked.annotations == {"summary": "CPU 95 on web-1"}
    w.clock.ms += 1000
    w.push("cpu", {"host": "web-1"}, [10])
    assert w.states() == {}
    assert [c[1] for c in w.changes] == ["firing", "resolved"]


def test_hysteresis_fires_above_and_resolves_only_below() -> None:
    w = World({"name": "Hot", "expr": "temp > 90", "resolve": "temp < 80"})
    w.push("temp", {}, [95])
    assert w.states() == {"": "firing"}
    for value in (85, 89, 91, 80):  # between 80 and 90: stays firing
        w.clock.ms += 1000
        w.push("temp", {}, [value])
        assert w.states() == {"": "firing"}, value
    w.clock.ms += 1000
    w.push("temp", {}, [79])
    assert w.states() == {}


def test_for_keeps_pending_until_it_elapses_on_tick() -> None:
    w = World({"name": "Slow", "expr": "x > 1", "for": "30s"})
    w.push("x", {}, [5])
    assert w.states() == {"": "pending"}
    w.clock.ms += 29_000
    w.evaluator.tick()
    assert w.states() == {"": "pending"}
    w.clock.ms += 1_000
    w.evaluator.tick()
    assert w.states() == {"": "firing"}


def test_pending_that_clears_never_fires() -> None:
    w = World({"name": "Blip", "expr": "x > 1", "for": "1m"})
    w.push("x", {}, [5])
    w.clock.ms += 1000
    w.push("x", {}, [0])
    assert w.states() == {}
    assert [c[1] for c in w.changes] == ["pending", "resolved"]


def test_keep_firing_for_holds_after_the_condition_clears() -> None:
    w = World({"name": "Flappy", "expr": "x > 1", "keep_firing_for": "10s"})
    w.push("x", {}, [5])
    w.clock.ms += 1000
    w.push("x", {}, [0])
    assert w.states() == {"": "firing"}
    w.clock.ms += 10_000
    w.evaluator.tick()
    assert w.states() == {}


def test_rate_of_a_counter_over_a_window() -> None:
    w = World({"name": "Errors", "expr": "rate(errors_total[10s]) > 5"})
    w.push("errors_total", {"job": "api"}, [0, 2, 4, 6, 8, 10])  # 2/s
    assert w.states() == {}
    w.clock.ms += 1000
    w.push("errors_total", {"job": "api"}, [40])  # 30 in the last second
    assert w.states() == {"job=api": "firing"}
    value = next(iter(w.evaluator.alerts.values())).alert.value
    assert value == pytest.approx(40 / 6)  # 40 over the 6 s the window holds


def test_counter_reset_counts_as_restart() -> None:
    w = World({"name": "Errors", "expr": "rate(c[1m]) > 100"})
    w.push("c", {}, [1000, 1010, 5])  # reset: +10, then +5 from zero
    assert w.states() == {}
    assert w.evaluator.windows.window(w.index.slot_for("c", {}), w.clock.ms, 60_000)[1].tolist() \
        == [1000, 1010, 5]


@pytest.mark.parametrize(("expr", "fires"), [
    ("avg_over_time(load[5s]) > 2", True),
    ("max_over_time(load[5s]) > 3.5", True),
    ("min_over_time(load[5s]) > 1.5", False),
    ("p95_over_time(load[5s]) >= 3.8", True),
    ("count_over_time(load[5s]) >= 5", True),
    ("sum_over_time(load[3s]) > 8.5", True),  # 2 + 3 + 4
    ("sum_over_time(load[3s]) > 9", False),
])
def test_window_aggregates(expr: str, fires: bool) -> None:
    w = World({"name": "Load", "expr": expr})
    w.push("load", {}, [1, 1, 2, 2, 3, 4])  # last 5 s: 1 2 2 3 4
    assert (w.states() == {"": "firing"}) is fires


def test_window_rule_resolves_on_tick_as_the_window_slides() -> None:
    w = World({"name": "Burst", "expr": "max_over_time(x[5s]) > 10"})
    w.push("x", {}, [50])
    assert w.states() == {"": "firing"}
    w.clock.ms += 6000  # no new sample: the spike leaves the window
    w.evaluator.tick()
    assert w.states() == {}


def test_ratio_of_two_series_matched_on_labels() -> None:
    w = World({"name": "ErrorRate", "expr": "errors / requests > 0.1"})
    w.push("requests", {"route": "/a"}, [100])
    w.push("requests", {"route": "/b"}, [100])
    w.push("errors", {"route": "/a"}, [5])
    w.push("errors", {"route": "/b"}, [20])
    assert w.states() == {"route=/b": "firing"}
    w.clock.ms += 1000
    w.push("requests", {"route": "/b"}, [1000])  # the denominator side moves it back
    assert w.states() == {}


def test_absent_fires_when_no_sample_for_the_duration() -> None:
    w = World({"name": "NoHeartbeat", "expr": 'absent(heartbeat{job="db"}, 10s)',
               "severity": "critical"})
    w.push("heartbeat", {"job": "db"}, [1])
    w.clock.ms += 9000
    w.evaluator.tick()
    assert w.states() == {}
    w.clock.ms += 1000
    w.evaluator.tick()
    assert w.states() == {"job=db": "firing"}
    w.push("heartbeat", {"job": "db"}, [1])
    w.evaluator.tick()
    assert w.states() == {}


def test_absent_of_a_series_never_seen_counts_from_rule_load() -> None:
    w = World({"name": "Missing", "expr": "absent(never_sent, 5s)"})
    w.evaluator.tick()
    assert w.states() == {}
    w.clock.ms += 5000
    w.evaluator.tick()
    assert w.states() == {"": "firing"}


def test_anomaly_rule_follows_anomaly_records() -> None:
    w = World({"name": "Odd", "expr": 'anomaly(orders, kinds="drop,level_shift") > 0.7'})
    w.push("orders", {"shop": "eu"}, [10])
    slot = w.index.slot_for("orders", {"shop": "eu"})
    sid = w.index.info(slot).id
    record = Anomaly(sid, "orders", {"shop": "eu"}, 0, 0, "spike", 0.9, 0.9, None, None,
                     None, 10.0)
    w.evaluator.on_anomaly(record)
    assert w.states() == {}  # a spike is not one of the kinds
    record.kind = "drop"
    w.evaluator.on_anomaly(record)
    assert w.states() == {"shop=eu": "firing"}
    record.state = "closed"
    w.evaluator.on_anomaly(record)
    assert w.states() == {}


def test_rules_index_by_metric_and_label() -> None:
    rules = [{"name": f"R{i}", "expr": f'cpu{{host="h{i}"}} > 90'} for i in range(500)]
    w = World(*rules)
    for i in range(500):
        w.push("cpu", {"host": f"h{i}"}, [95 if i % 100 == 0 else 10])
    assert len(w.evaluator._pair_rule) == 500  # one pair per series, not 500 × 500
    assert sorted(t.alert.rule for t in w.evaluator.alerts.values()) == \
        ["R0", "R100", "R200", "R300", "R400"]


def test_acknowledge_and_manual_resolve_then_new_episode() -> None:
    w = World({"name": "High", "expr": "x > 1"})
    w.push("x", {}, [5])
    fp = next(iter(w.evaluator.alerts))
    w.evaluator.acknowledge(fp, "alice", "looking")
    assert w.states() == {"": "acknowledged"}
    w.evaluator.resolve(fp, "alice", "fixed")
    assert w.states() == {}
    w.clock.ms += 1000
    w.push("x", {}, [6])
    tracked = w.evaluator.alerts[fp]
    assert tracked.alert.state is AlertState.FIRING and tracked.alert.episode.number == 2


def test_changing_a_rule_resolves_its_alerts_and_removing_keeps_others() -> None:
    w = World({"name": "A", "expr": "x > 1"}, {"name": "B", "expr": "x > 2"})
    w.push("x", {}, [5])
    assert sorted(t.alert.rule for t in w.evaluator.alerts.values()) == ["A", "B"]
    w.evaluator.set_rules([parse_rule({"name": "B", "expr": "x > 2",
                                       "annotations": {"summary": "new"}})])
    assert [t.alert.rule for t in w.evaluator.alerts.values()] == ["B"]
    w.clock.ms += 1000
    w.push("x", {}, [0])
    assert w.states() == {}


def test_custom_alert_dedups_and_ends_at() -> None:
    w = World()
    a = w.evaluator.raise_alert("DiskFull", {"host": "a"}, {"summary": "full"}, "high",
                                w.clock.ms + 5000)
    b = w.evaluator.raise_alert("DiskFull", {"host": "a"}, {"summary": "still"}, "high",
                                w.clock.ms + 5000)
    assert a is b and len(w.evaluator.alerts) == 1 and b.annotations == {"summary": "still"}
    w.clock.ms += 5000
    w.evaluator.tick()
    assert w.evaluator.alerts == {}


def test_conditions_from_other_stages_share_the_lifecycle() -> None:
    w = World()
    ev = w.evaluator
    assert ev.observe("slo", "SLOBurn", {"slo": "api"}, "critical", {}, False) is None
    first = ev.observe("slo", "SLOBurn", {"slo": "api"}, "critical", {"summary": "fast"}, True,
                       14.4, for_ms=2000)
    assert first is not None and first.source == "slo"
    assert first.alert.state is AlertState.PENDING
    w.clock.ms += 2000
    ev.observe("slo", "SLOBurn", {"slo": "api"}, "critical", {"summary": "fast"}, True, 15.0)
    assert first.alert.state is AlertState.FIRING and first.alert.value == 15.0
    ev.observe("slo", "SLOBurn", {"slo": "api"}, "critical", {}, False)
    assert ev.alerts == {} and [c[1] for c in w.changes] == ["pending", "firing", "resolved"]
    again = ev.observe("slo", "SLOBurn", {"slo": "api"}, "critical", {}, True)
    assert again is first and first.alert.episode.number == 2


def test_an_alert_firing_again_follows_the_rule_as_it_is_now() -> None:
    w = World({"name": "High", "expr": "x > 1"})
    w.push("x", {}, [5])
    w.clock.ms += 1000
    w.push("x", {}, [0])
    w.evaluator.set_rules([parse_rule({"name": "High", "expr": "x > 1", "for": "1m",
                                       "annotations": {"summary": "now {{ $value }}"}})])
    w.clock.ms += 1000
    w.push("x", {}, [7])
    tracked = next(iter(w.evaluator.alerts.values()))
    assert tracked.alert.state is AlertState.PENDING and tracked.alert.episode.number == 2
    assert tracked.annotations == {"summary": "now 7"}
