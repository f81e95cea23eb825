"""The alert state machine: `for`, `keep_firing_for`, acknowledge, resolve, episodes."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from seismo.alerting import Alert, AlertState, Transition, fingerprint
from seismo.alerting.state import ALLOWED
from seismo.errors import InvalidInput

PENDING, FIRING = AlertState.PENDING, AlertState.FIRING
ACKNOWLEDGED, RESOLVED = AlertState.ACKNOWLEDGED, AlertState.RESOLVED


class Clock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def make(clock: Clock, **kwargs: int) -> tuple[Alert, list[Transition]]:
    seen: list[Transition] = []
    alert = Alert("HighCPU", {"host": "a"}, clock, on_transition=seen.append, **kwargs)
    return alert, seen


def path(seen: list[Transition]) -> list[tuple[AlertState | None, AlertState, int]]:
    return [(t.from_state, t.to_state, t.at_ms) for t in seen]


def test_for_holds_the_alert_pending_until_it_elapses() -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=30_000)
    alert.observe(False)
    assert alert.state is None and seen == []
    clock.advance(1000)
    alert.observe(True, 91.0)
    assert alert.state is PENDING and not alert.is_firing
    clock.advance(29_999)
    alert.tick()
    assert alert.state is PENDING
    clock.advance(1)
    alert.tick()
    assert alert.state is FIRING and alert.is_firing
    assert path(seen) == [(None, PENDING, 1000), (PENDING, FIRING, 31_000)]
    assert seen[-1].reason == "condition held for `for`"
    assert alert.value == 91.0
    assert alert.episode is not None and alert.episode.fired_at_ms == 31_000


def test_an_observation_after_for_fires_too() -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=10_000)
    alert.observe(True)
    clock.advance(15_000)
    alert.observe(True)
    assert path(seen) == [(None, PENDING, 0), (PENDING, FIRING, 15_000)]


def test_for_zero_fires_at_once() -> None:
    clock = Clock(5)
    alert, seen = make(clock)
    alert.observe(True)
    assert path(seen) == [(None, FIRING, 5)]
    assert seen[0].reason == "condition true" and seen[0].episode == 1


def test_a_blip_shorter_than_for_resolves_without_having_fired() -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=30_000)
    alert.observe(True)
    clock.advance(10_000)
    alert.observe(False)
    assert path(seen) == [(None, PENDING, 0), (PENDING, RESOLVED, 10_000)]
    assert seen[-1].reason == "condition cleared before `for` elapsed"
    assert alert.episode is not None and alert.episode.fired_at_ms is None
    clock.advance(60_000)
    alert.tick()
    assert alert.state is RESOLVED


def test_keep_firing_for_outlasts_a_short_clearance() -> None:
    clock = Clock(0)
    alert, seen = make(clock, keep_firing_for_ms=60_000)
    alert.observe(True)
    clock.advance(1000)
    alert.observe(False)
    clock.advance(30_000)
    alert.observe(True)  # back before keep_firing_for ran out: still the same episode
    clock.advance(10_000)
    alert.observe(False)  # cleared again at 41 s
    clock.advance(59_999)
    alert.tick()
    assert alert.state is FIRING
    clock.advance(1)
    alert.tick()
    assert path(seen) == [(None, FIRING, 0), (FIRING, RESOLVED, 101_000)]
    assert seen[-1].reason == "condition cleared for `keep_firing_for`"


def test_repeated_false_observations_do_not_restart_keep_firing_for() -> None:
    clock = Clock(0)
    alert, _ = make(clock, keep_firing_for_ms=10_000)
    alert.observe(True)
    for _ in range(10):
        clock.advance(1000)
        alert.observe(False)
    assert alert.state is FIRING
    clock.advance(1000)
    alert.observe(False)
    assert alert.state is RESOLVED


def test_without_keep_firing_for_a_false_observation_resolves() -> None:
    clock = Clock(0)
    alert, seen = make(clock)
    alert.observe(True)
    clock.advance(5)
    alert.observe(False)
    assert path(seen) == [(None, FIRING, 0), (FIRING, RESOLVED, 5)]
    assert seen[-1].reason == "condition cleared"
    assert alert.episode is not None and alert.episode.resolved_at_ms == 5


def test_acknowledge_records_who_when_and_why() -> None:
    clock = Clock(0)
    alert, seen = make(clock)
    alert.observe(True)
    clock.advance(2000)
    ack = alert.acknowledge("alice", "looking into it")
    assert (ack.by, ack.at_ms, ack.comment) == ("alice", 2000, "looking into it")
    assert alert.state is ACKNOWLEDGED and alert.is_firing
    assert alert.episode is not None and alert.episode.acknowledgement == ack
    assert seen[-1] == Transition(1, FIRING, ACKNOWLEDGED, 2000, "acknowledged", "alice",
                                  "looking into it")
    # An acknowledged alert still resolves when its condition clears.
    alert.observe(True)
    clock.advance(1)
    alert.observe(False)
    assert alert.state is RESOLVED
    assert seen[-1].from_state is ACKNOWLEDGED and seen[-1].by is None


@pytest.mark.parametrize(("setup", "state_name"), [
    ("inactive", "inactive"),
    ("pending", "pending"),
    ("acknowledged", "acknowledged"),
    ("resolved", "resolved"),
])
def test_only_a_firing_alert_can_be_acknowledged(setup: str, state_name: str) -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=0 if setup != "pending" else 60_000)
    if setup != "inactive":
        alert.observe(True)
    if setup == "acknowledged":
        alert.acknowledge("bob")
    if setup == "resolved":
        alert.observe(False)
    before = list(seen)
    with pytest.raises(InvalidInput) as caught:
        alert.acknowledge("alice")
    assert caught.value.message == (f'alert HighCPU{{host="a"}} is {state_name}: only a '
                                    "firing alert can be acknowledged")
    assert caught.value.field == "state"
    assert seen == before


def test_a_pending_alert_whose_for_has_elapsed_can_be_acknowledged() -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=1000)
    alert.observe(True)
    clock.advance(1000)
    alert.acknowledge("alice")  # the clock says it fires first, then the ack lands
    assert [t.to_state for t in seen] == [PENDING, FIRING, ACKNOWLEDGED]


@pytest.mark.parametrize(("by", "comment", "field", "message"), [
    ("", "", "by", "say who does this: `by` must not be empty"),
    ("   ", "", "by", "say who does this: `by` must not be empty"),
    ("x" * 257, "", "by", "`by` is longer than 256 characters"),
    ("alice", "c" * 4097, "comment", "comment is longer than 4096 characters"),
])
def test_acknowledge_and_resolve_refuse_bad_input(by: str, comment: str, field: str,
                                                  message: str) -> None:
    alert, seen = make(Clock())
    alert.observe(True)
    for act in (alert.acknowledge, alert.resolve):
        with pytest.raises(InvalidInput) as caught:
            act(by, comment)
        assert (caught.value.field, caught.value.message) == (field, message)
    assert alert.state is FIRING and len(seen) == 1


@pytest.mark.parametrize("setup", ["pending", "firing", "acknowledged"])
def test_manual_resolve(setup: str) -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=60_000 if setup == "pending" else 0)
    alert.observe(True)
    if setup == "acknowledged":
        alert.acknowledge("bob")
    clock.advance(500)
    alert.resolve("alice", "fixed the fan")
    assert alert.state is RESOLVED
    assert seen[-1] == Transition(1, AlertState(setup), RESOLVED, 500, "resolved by hand",
                                  "alice", "fixed the fan")
    assert alert.episode is not None
    assert (alert.episode.resolved_at_ms, alert.episode.resolved_by) == (500, "alice")
    with pytest.raises(InvalidInput, match="is resolved: only a pending, firing or "
                                           "acknowledged alert can be resolved"):
        alert.resolve("alice")


def test_an_alert_that_never_started_cannot_be_resolved() -> None:
    alert, _ = make(Clock())
    with pytest.raises(InvalidInput, match="is inactive"):
        alert.resolve("alice")


def test_refire_after_resolve_is_a_new_episode() -> None:
    clock = Clock(0)
    alert, seen = make(clock, for_ms=1000)
    alert.observe(True)
    clock.advance(1000)
    alert.tick()
    alert.acknowledge("bob")
    clock.advance(1000)
    alert.observe(False)
    first = alert.episode
    clock.advance(1000)
    alert.observe(True)
    assert alert.state is PENDING
    assert alert.episode is not None and alert.episode is not first
    assert alert.episode.number == 2 and alert.episode.acknowledgement is None
    assert seen[-1] == Transition(2, RESOLVED, PENDING, 3000, "condition true again")
    clock.advance(1000)
    alert.tick()
    assert [(t.episode, t.to_state) for t in seen] == [
        (1, PENDING), (1, FIRING), (1, ACKNOWLEDGED), (1, RESOLVED), (2, PENDING), (2, FIRING)]


def test_after_a_manual_resolve_the_next_true_observation_reopens() -> None:
    clock = Clock(0)
    alert, seen = make(clock)
    alert.observe(True)
    alert.resolve("alice")
    alert.tick()
    assert alert.state is RESOLVED  # time alone does not reopen it
    alert.observe(True)
    assert alert.state is FIRING and seen[-1].episode == 2


def test_a_clock_that_steps_back_reads_as_the_last_time_seen() -> None:
    clock = Clock(10_000)
    alert, seen = make(clock)
    alert.observe(True)
    clock.now_ms = 4000
    alert.observe(False)
    assert path(seen) == [(None, FIRING, 10_000), (FIRING, RESOLVED, 10_000)]


def test_transitions_kept_in_memory_are_bounded() -> None:
    clock = Clock(0)
    alert, seen = make(clock, max_transitions=3)
    for _ in range(5):
        clock.advance(1)
        alert.observe(True)
        clock.advance(1)
        alert.observe(False)
    assert len(seen) == 10
    assert list(alert.transitions) == seen[-3:]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"for_ms": -1}, "for"),
    ({"keep_firing_for_ms": -1}, "keep_firing_for"),
    ({"max_transitions": 0}, "max_transitions"),
])
def test_bad_settings_are_refused(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make(Clock(), **kwargs)
    assert caught.value.field == field


def test_fingerprint_is_rule_plus_sorted_labels() -> None:
    a = fingerprint("HighCPU", {"host": "a", "env": "prod"})
    assert a == fingerprint("HighCPU", {"env": "prod", "host": "a"})
    assert len(a) == 16 and int(a, 16) >= 0
    assert a == Alert("HighCPU", {"env": "prod", "host": "a"}, Clock()).fingerprint
    assert a != fingerprint("HighMem", {"host": "a", "env": "prod"})
    assert a != fingerprint("HighCPU", {"host": "b", "env": "prod"})
    # No two different alerts share an encoding.
    assert fingerprint("a", {"b": "c,d"}) != fingerprint("a", {"b": "c", "d": ""})
    assert fingerprint("a{b", {}) != fingerprint("a", {"b": ""})
    # Stable across processes and releases: this value is stored with the history.
    # Alertmanager's fingerprint of {alertname="HighCPU", host="a"}.
    assert fingerprint("HighCPU", {"host": "a"}) == "8eb796a0cf42dedf"


# --- property: no sequence of operations breaks the invariants ------------------------


class AlertMachine(RuleBasedStateMachine):
    """Observations, acks, resolves and clock steps in any order, at increasing times."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(0)
        self.seen: list[Transition] = []
        self.condition = False
        self.alert = Alert("r", {}, self.clock)

    @initialize(for_ms=st.sampled_from([0, 1, 1000, 5000]),
                keep_ms=st.sampled_from([0, 1, 1000, 5000]))
    def start(self, for_ms: int, keep_ms: int) -> None:
        self.alert = Alert("r", {"a": "b"}, self.clock, for_ms=for_ms,
                           keep_firing_for_ms=keep_ms, on_transition=self.seen.append)

    @rule(ms=st.integers(0, 7000))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule(is_true=st.booleans())
    def observe(self, is_true: bool) -> None:
        self.alert.observe(is_true)
        self.condition = is_true
        if is_true:
            assert self.alert.is_active
        else:
            assert self.alert.state is not AlertState.PENDING

    @rule()
    def tick(self) -> None:
        self.alert.tick()
        episode = self.alert.episode
        # Time alone moves the alert on as soon as it may, not later.
        if self.alert.state is PENDING:
            assert episode is not None
            assert self.clock.now_ms < episode.started_at_ms + self.alert.for_ms

    @rule(by=st.sampled_from(["alice", "bob"]))
    def acknowledge(self, by: str) -> None:
        count = len(self.seen)
        try:
            self.alert.acknowledge(by)
        except InvalidInput:
            assert self.alert.state is not FIRING
            assert len(self.seen) == count or self.seen[-1].to_state is not ACKNOWLEDGED
        else:
            assert self.alert.state is ACKNOWLEDGED and self.seen[-1].by == by

    @rule()
    def resolve(self) -> None:
        try:
            self.alert.resolve("carol")
        except InvalidInput:
            assert not self.alert.is_active
        else:
            assert self.alert.state is RESOLVED and self.seen[-1].by == "carol"

    @invariant()
    def transitions_keep_the_rules(self) -> None:
        state: AlertState | None = None
        episode = 0
        started_at = fired_at = -1
        last_at = 0
        for t in self.seen:
            assert t.from_state is state, "transitions chain"
            assert t.to_state in ALLOWED[state], f"{state} -> {t.to_state} is not allowed"
            assert t.at_ms >= last_at, "transition times never go back"
            if state in (None, RESOLVED):
                assert t.episode == episode + 1, "leaving resolved starts a new episode"
                episode, started_at, fired_at = t.episode, t.at_ms, -1
            else:
                assert t.episode == episode, "an episode only ends by resolving"
            if t.to_state is FIRING:
                assert t.at_ms >= started_at + self.alert.for_ms, "fired before `for`"
                fired_at = t.at_ms
            if t.to_state is ACKNOWLEDGED:
                assert fired_at >= 0, "acknowledged an alert that never fired"
            state, last_at = t.to_state, t.at_ms
        assert self.alert.state is state
        if self.alert.state is ACKNOWLEDGED:
            assert self.alert.episode is not None
            assert self.alert.episode.fired_at_ms is not None
            assert self.alert.episode.acknowledgement is not None


AlertMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40,
                                          deadline=None)
TestAlertMachine = AlertMachine.TestCase


def test_docstring_examples_run() -> None:
    import doctest

    from seismo.alerting import expr, state

    for module in (expr, state):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__
