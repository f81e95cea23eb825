"""The alert state machine: one fingerprint (rule + labels) through its episodes.

The rule evaluator reports "condition true/false" observations (hysteresis is its business);
`Alert` applies `for` and `keep_firing_for` on an injected clock, takes acknowledgements and
manual resolves, and records every transition. No I/O: the engine (issue 6) persists and
notifies from the transitions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from seismo.errors import InvalidInput
from seismo.notify.message import fingerprint_of

MAX_COMMENT_CHARS = 4096
MAX_BY_CHARS = 256


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ALLOWED: dict[AlertState | None, frozenset[AlertState]] = {
    None: frozenset({AlertState.PENDING, AlertState.FIRING}),
    AlertState.PENDING: frozenset({AlertState.FIRING, AlertState.RESOLVED}),
    AlertState.FIRING: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset({AlertState.PENDING, AlertState.FIRING}),
}
"""Every transition the machine makes; None is "no episode yet". Leaving RESOLVED always
starts a new episode."""

ACTIVE = frozenset({AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED})


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Stable id of an alert: Alertmanager's fingerprint of its labels with `alertname`.

    The same 16 hex digits Alertmanager computes for these labels, so an alert forwarded
    to it or sent in a webhook keeps one id everywhere.

    >>> fingerprint("HighCPU", {"b": "2", "a": "1"}) == fingerprint("HighCPU", {"a": "1", "b": "2"})
    True
    """
    return fingerprint_of({**labels, "alertname": rule})


@dataclass(frozen=True)
class Transition:
    episode: int
    from_state: AlertState | None
    to_state: AlertState
    at_ms: int
    reason: str
    by: str | None = None
    """Who made it, for acknowledgements and manual resolves; None for the rule."""
    comment: str = ""


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at_ms: int
    comment: str = ""


@dataclass
class Episode:
    """One run of the alert from its first true observation to resolved."""

    number: int
    started_at_ms: int
    fired_at_ms: int | None = None
    """None if it resolved while still pending (a blip nobody was told about)."""
    acknowledgement: Acknowledgement | None = None
    resolved_at_ms: int | None = None
    resolved_by: str | None = None


@dataclass(eq=False)
class Alert:
    """One alert (rule + labels) and the state machine that moves it.

    Times come from `clock` (ms since the epoch) and never go backwards: a clock that steps
    back is read as the last time seen. Only a firing alert can be acknowledged: a pending
    one has not been notified to anyone yet. A manual resolve ends the episode; if the
    condition still holds, the next true observation starts a new one (silence or
    acknowledge an alert to quiet it instead).
    """

    rule: str
    labels: Mapping[str, str]
    clock: Callable[[], int]
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    on_transition: Callable[[Transition], None] | None = None
    max_transitions: int = 256
    """Transitions kept in memory (oldest dropped first); `on_transition` sees them all."""

    state: AlertState | None = field(default=None, init=False)
    episode: Episode | None = field(default=None, init=False)
    value: float | None = field(default=None, init=False)
    """The value of the last observation that carried one (for `{{ $value }}`)."""
    transitions: deque[Transition] = field(init=False)
    fingerprint: str = field(init=False)
    _condition: bool = field(default=False, init=False)
    _cleared_at_ms: int | None = field(default=None, init=False)
    _now_ms: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.for_ms < 0:
            raise InvalidInput("for must not be negative", field="for")
        if self.keep_firing_for_ms < 0:
            raise InvalidInput("keep_firing_for must not be negative", field="keep_firing_for")
        if self.max_transitions < 1:
            raise InvalidInput("max_transitions must be at least 1", field="max_transitions")
        self.labels = dict(self.labels)
        self.fingerprint = fingerprint(self.rule, self.labels)
        self.transitions = deque(maxlen=self.max_transitions)

    @property
    def is_firing(self) -> bool:
        """Firing or acknowledged: the condition held for `for` and the episode is open."""
        return self.state in (AlertState.FIRING, AlertState.ACKNOWLEDGED)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    def observe(self, is_true: bool, value: float | None = None) -> None:
        """Record that the rule's condition is (or is no longer) true now."""
        now = self._advance()
        if value is not None:
            self.value = value
        self._condition = is_true
        if is_true:
            self._cleared_at_ms = None
            if self.state in (None, AlertState.RESOLVED):
                self._open(now)
        elif self.state is AlertState.PENDING:
            self._resolve(now, "condition cleared before `for` elapsed")
        elif self.is_firing and self._cleared_at_ms is None:
            self._cleared_at_ms = now
            self._tick(now)

    def tick(self) -> None:
        """Let time pass with no new observation: `for` and `keep_firing_for` may elapse."""
        self._advance()

    def acknowledge(self, by: str, comment: str = "") -> Acknowledgement:
        """Acknowledge a firing alert; raise InvalidInput in any other state."""
        _check_person(by, comment)
        now = self._advance()
        if self.state is not AlertState.FIRING:
            raise InvalidInput(f"alert {self.describe()} is {self._state_name()}: only a "
                               "firing alert can be acknowledged", field="state")
        assert self.episode is not None
        ack = Acknowledgement(by, now, comment)
        self.episode.acknowledgement = ack
        self._move(AlertState.ACKNOWLEDGED, now, "acknowledged", by=by, comment=comment)
        return ack

    def resolve(self, by: str, comment: str = "") -> None:
        """Resolve by hand a pending, firing or acknowledged alert."""
        _check_person(by, comment)
        now = self._advance()
        if not self.is_active:
            raise InvalidInput(f"alert {self.describe()} is {self._state_name()}: only a "
                               "pending, firing or acknowledged alert can be resolved",
                               field="state")
        self._resolve(now, "resolved by hand", by=by, comment=comment)

    def restore(self, state: AlertState, episode: Episode, value: float | None = None) -> None:
        """Put back an alert read from durable history (after a restart); no transition is
        recorded. An active one's condition counts as true until observed again; a resolved
        one is put back so that firing again continues its episode count."""
        self.state, self.episode, self.value = state, episode, value
        self._condition = state in ACTIVE
        self._cleared_at_ms = None
        self._now_ms = max(self._now_ms, episode.started_at_ms)

    def describe(self) -> str:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.rule}{{{inner}}}"

    def _state_name(self) -> str:
        return "inactive" if self.state is None else self.state.value

    def _advance(self) -> int:
        self._now_ms = max(self._now_ms, int(self.clock()))
        self._tick(self._now_ms)
        return self._now_ms

    def _tick(self, now: int) -> None:
        episode = self.episode
        if (self.state is AlertState.PENDING and self._condition and episode is not None
                and now >= episode.started_at_ms + self.for_ms):
            self._fire(now, "condition held for `for`")
        if (self.is_firing and self._cleared_at_ms is not None
                and now >= self._cleared_at_ms + self.keep_firing_for_ms):
            self._resolve(now, "condition cleared" if self.keep_firing_for_ms == 0
                          else "condition cleared for `keep_firing_for`")

    def _open(self, now: int) -> None:
        number = 1 if self.episode is None else self.episode.number + 1
        self.episode = Episode(number, now)
        if self.for_ms == 0:
            self._fire(now, "condition true" if number == 1 else "condition true again")
        else:
            self._move(AlertState.PENDING, now,
                       "condition true" if number == 1 else "condition true again")

    def _fire(self, now: int, reason: str) -> None:
        assert self.episode is not None
        self.episode.fired_at_ms = now
        self._move(AlertState.FIRING, now, reason)

    def _resolve(self, now: int, reason: str, *, by: str | None = None,
                 comment: str = "") -> None:
        assert self.episode is not None
        self.episode.resolved_at_ms = now
        self.episode.resolved_by = by
        self._cleared_at_ms = None
        self._move(AlertState.RESOLVED, now, reason, by=by, comment=comment)

    def _move(self, to: AlertState, now: int, reason: str, *, by: str | None = None,
              comment: str = "") -> None:
        assert to in ALLOWED[self.state], (self.state, to)
        assert self.episode is not None
        transition = Transition(self.episode.number, self.state, to, now, reason, by, comment)
        self.state = to
        self.transitions.append(transition)
        if self.on_transition is not None:
            self.on_transition(transition)


def _check_person(by: str, comment: str) -> None:
    if not by.strip():
        raise InvalidInput("say who does this: `by` must not be empty", field="by")
    if len(by) > MAX_BY_CHARS:
        raise InvalidInput(f"`by` is longer than {MAX_BY_CHARS} characters", field="by")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"comment is longer than {MAX_COMMENT_CHARS} characters",
                           field="comment")
