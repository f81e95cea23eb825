"""Silences: matcher forms, states by the clock, validation, and persistence in SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from seismo.alerting.silences import Matcher, SilenceState, SilenceStore, parse_matchers
from seismo.errors import InvalidInput, NotFound

T0 = 1_800_000_000_000
HOUR = 3600_000


class Clock:
    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SilenceStore:
    return SilenceStore(tmp_path / "state.db", clock)


def test_the_dict_form_silences_matching_alerts(store: SilenceStore) -> None:
    silence = store.add({"matchers": {"alertname": "HighCPU"}, "ends_at": T0 + HOUR,
                         "comment": "deploy"}, "alice")
    assert len(silence.id) == 32 and silence.created_by == "alice"
    assert silence.matchers == (Matcher("alertname", "HighCPU"),)
    assert silence.starts_at_ms == T0 and silence.ends_at_ms == T0 + HOUR
    assert store.silencing({"alertname": "HighCPU", "host": "a"}) == [silence.id]
    assert store.silencing({"alertname": "DiskFull"}) == []


def test_the_list_form_with_regex_and_negation(store: SilenceStore) -> None:
    silence = store.add({"matchers": [
        {"name": "host", "value": "web-[0-9]+", "isRegex": True},
        {"name": "env", "value": "dev", "isEqual": False},
        {"name": "severity", "value": "critical", "is_regex": False, "is_equal": False}],
        "duration": "2h"}, "bob")
    assert silence.ends_at_ms == T0 + 2 * HOUR
    assert store.silencing({"host": "web-1", "env": "prod", "severity": "high"}) == [silence.id]
    assert store.silencing({"host": "web-1x", "env": "prod"}) == []  # regex is anchored
    assert store.silencing({"host": "web-1", "env": "dev"}) == []
    assert store.silencing({"host": "web-1", "severity": "critical"}) == []
    assert silence.matchers[0].to_dict() == \
        {"name": "host", "value": "web-[0-9]+", "isRegex": True, "isEqual": True}
    assert [str(m) for m in silence.matchers] == ['host=~"web-[0-9]+"', 'env!="dev"',
                                                  'severity!="critical"']


def test_states_follow_the_clock(store: SilenceStore, clock: Clock) -> None:
    silence = store.add({"matchers": {"alertname": "A"}, "starts_at": T0 + HOUR,
                         "ends_at": T0 + 2 * HOUR}, "alice")
    labels = {"alertname": "A"}
    assert silence.state(clock()) is SilenceState.PENDING and store.silencing(labels) == []
    assert [s.id for s in store.list("pending")] == [silence.id]
    clock.now_ms = T0 + HOUR
    assert store.silencing(labels) == [silence.id]
    assert [s.id for s in store.list("active")] == [silence.id]
    clock.now_ms = T0 + 2 * HOUR
    assert store.silencing(labels) == []
    assert [s.id for s in store.list("expired")] == [silence.id]
    assert store.list("active") == [] and len(store.list()) == 1
    assert store.get(silence.id).to_dict(clock())["state"] == "expired"


def test_a_start_in_the_past_starts_now(store: SilenceStore) -> None:
    silence = store.add({"matchers": {"a": "b"}, "starts_at": "2020-01-01T00:00:00Z",
                         "ends_at": "2099-01-01T00:00:00Z"}, "alice")
    assert silence.starts_at_ms == T0
    assert silence.ends_at_ms == 4_070_908_800_000


def test_times_relative_to_now(store: SilenceStore) -> None:
    silence = store.add({"matchers": {"a": "b"}, "starts_at": "now+30m", "ends_at": "now + 2h"},
                        "alice")
    assert (silence.starts_at_ms, silence.ends_at_ms) == (T0 + HOUR // 2, T0 + 2 * HOUR)
    for bad in ("now+", "now*2h", "now+soon", "later"):
        with pytest.raises(InvalidInput) as info:
            store.add({"matchers": {"a": "b"}, "ends_at": bad}, "alice")
        assert info.value.field == "ends_at" and "now+2h" in info.value.message
    with pytest.raises(InvalidInput) as info:
        store.add({"matchers": {"a": "b"}, "ends_at": "now-1m"}, "alice")
    assert "after it starts" in info.value.message


def test_expire_ends_a_silence_now(store: SilenceStore, clock: Clock) -> None:
    active = store.add({"matchers": {"a": "b"}, "duration": "1h"}, "alice")
    pending = store.add({"matchers": {"a": "b"}, "starts_at": T0 + HOUR, "duration": "1h"},
                        "alice")
    clock.now_ms += 1000
    expired = store.expire(active.id)
    assert expired.ends_at_ms == T0 + 1000 and expired.starts_at_ms == T0
    assert store.silencing({"a": "b"}) == []
    never = store.expire(pending.id)
    assert never.starts_at_ms == never.ends_at_ms == T0 + 1000
    clock.now_ms += 1000
    assert store.expire(active.id) == expired  # twice: nothing changes
    with pytest.raises(NotFound) as info:
        store.expire("nope")
    assert info.value.field == "id"
    with pytest.raises(NotFound):
        store.get("nope")


@pytest.mark.parametrize(("doc", "field", "reason"), [
    ({"ends_at": T0 + HOUR}, "matchers", "required"),
    ({"matchers": {}, "ends_at": T0 + HOUR}, "matchers", "at least one matcher"),
    ({"matchers": [], "ends_at": T0 + HOUR}, "matchers", "at least one matcher"),
    ({"matchers": {"a": ""}, "ends_at": T0 + HOUR}, "matchers", "empty string"),
    ({"matchers": [{"name": "a", "value": ".*", "isRegex": True},
                   {"name": "b", "value": "x", "isEqual": False}], "ends_at": T0 + HOUR},
     "matchers", "empty string"),
    ({"matchers": {"1a": "b"}, "ends_at": T0 + HOUR}, "matchers.1a.name", "label name"),
    ({"matchers": {"a": 1}, "ends_at": T0 + HOUR}, "matchers.a.value", "string"),
    ({"matchers": [{"name": "a", "value": "(", "isRegex": True}], "ends_at": T0 + HOUR},
     "matchers[0].value", "regular expression"),
    ({"matchers": [{"name": "a", "value": "b", "isRegex": "yes"}], "ends_at": T0 + HOUR},
     "matchers[0].isRegex", "true or false"),
    ({"matchers": [{"name": "a", "value": "b", "op": "="}], "ends_at": T0 + HOUR},
     "matchers[0].op", "unknown key"),
    ({"matchers": ["a=b"], "ends_at": T0 + HOUR}, "matchers[0]", "name, value"),
    ({"matchers": {"a": "b"}}, "ends_at", "required"),
    ({"matchers": {"a": "b"}, "ends_at": T0 - 1}, "ends_at", "after it starts"),
    ({"matchers": {"a": "b"}, "starts_at": T0 + 2 * HOUR, "ends_at": T0 + HOUR}, "ends_at",
     "after it starts"),
    ({"matchers": {"a": "b"}, "ends_at": "tomorrow"}, "ends_at", "RFC 3339"),
    ({"matchers": {"a": "b"}, "ends_at": "2099-01-01T00:00:00"}, "ends_at", "zone"),
    ({"matchers": {"a": "b"}, "duration": "0s"}, "duration", "after it starts"),
    ({"matchers": {"a": "b"}, "duration": "later"}, "duration", "duration"),
    ({"matchers": {"a": "b"}, "duration": "1h", "ends_at": T0 + HOUR}, "duration", "not both"),
    ({"matchers": {"a": "b"}, "duration": "1h", "comment": "x" * 4097}, "comment", "4096"),
    ({"matchers": {"a": "b"}, "duration": "1h", "comment": 5}, "comment", "string"),
    ({"matchers": {"a": "b"}, "duration": "1h", "createdBy": "x"}, "createdBy", "unknown key"),
])
def test_a_bad_silence_names_the_field(store: SilenceStore, doc: dict[str, Any], field: str,
                                       reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store.add(doc, "alice")
    assert info.value.field == field
    assert reason in info.value.message
    assert store.list() == []


def test_a_plain_value_is_not_a_regex(store: SilenceStore) -> None:
    silence = store.add({"matchers": [{"name": "a", "value": "("}], "duration": "1h"}, "alice")
    assert store.silencing({"a": "("}) == [silence.id]


def test_created_by_is_required(store: SilenceStore) -> None:
    for by in ("", "  ", "x" * 257):
        with pytest.raises(InvalidInput) as info:
            store.add({"matchers": {"a": "b"}, "duration": "1h"}, by)
        assert info.value.field == "created_by"
    with pytest.raises(InvalidInput) as info:
        store.list("gone")
    assert info.value.field == "state"


def test_silences_survive_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "state.db"
    store = SilenceStore(path, clock)
    kept = store.add({"matchers": [{"name": "host", "value": "db.*", "isRegex": True}],
                      "duration": "1h", "comment": "maintenance"}, "alice")
    ended = store.add({"matchers": {"a": "b"}, "duration": "1h"}, "bob")
    store.expire(ended.id)
    store.close()
    again = SilenceStore(path, clock)
    assert again.get(kept.id) == kept
    assert again.get(ended.id).ends_at_ms == T0
    assert again.silencing({"host": "db-1"}) == [kept.id]
    assert {s.id for s in again.list()} == {kept.id, ended.id}
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_another_process_writing_is_seen(tmp_path: Path, clock: Clock) -> None:
    server = SilenceStore(tmp_path / "state.db", clock)
    cli = SilenceStore(tmp_path / "state.db", clock)
    assert server.silencing({"a": "b"}) == []
    silence = cli.add({"matchers": {"a": "b"}, "duration": "1h"}, "cli")
    assert server.silencing({"a": "b"}) == [silence.id]
    cli.expire(silence.id)
    assert server.silencing({"a": "b"}) == []


def test_expired_silences_are_deleted_after_retention(tmp_path: Path, clock: Clock) -> None:
    store = SilenceStore(tmp_path / "state.db", clock, retention_ms=HOUR)
    old = store.add({"matchers": {"a": "b"}, "duration": "1h"}, "alice")
    clock.now_ms += 2 * HOUR + 1
    store.add({"matchers": {"a": "c"}, "duration": "1h"}, "alice")
    with pytest.raises(NotFound):
        store.get(old.id)


def test_parse_matchers_is_public() -> None:
    assert parse_matchers({"alertname": "A", "host": "b"}) == (
        Matcher("alertname", "A"), Matcher("host", "b"))
