"""Sessions from events: start/end in any order, stale on idleness, storage, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from seismo.errors import InvalidInput, NotFound
from tests.sessions.helpers import Clock, Harness

T0 = 1_700_000_000_000


def test_start_events_end_make_a_finished_session_with_its_timeline(tmp_path: Path) -> None:
    h = Harness(tmp_path / "state.db", Clock(T0 + 60_000))
    h.add("session.start", "s1", T0, kind="train", user="ana", model="gpt")
    h.add("step", "s1", T0 + 1000)
    h.add("oom", "s1", T0 + 2000, severity="high")
    assert h.service.get("s1")["state"] == "active"
    h.add("session.end", "s1", T0 + 30_000, status="success")
    doc = h.service.get("s1")
    assert doc["state"] == "finished" and doc["status"] == "success"
    assert doc["duration_s"] == 30.0 and doc["kind"] == "train" and doc["user"] == "ana"
    assert doc["attributes"] == {"kind": "train", "user": "ana", "model": "gpt"}
    assert [e["type"] for e in doc["timeline"]] == ["session.start", "step", "oom",
                                                    "session.end"]
    assert doc["early"] == {"step": 1, "oom": 1, "__errors__": 1}
    assert [(d["change"], d["state"]) for _, d in h.published] == [
        ("start", "active"), ("update", "active"), ("update", "active"), ("end", "finished")]
    h.close()


def test_an_end_before_its_start(tmp_path: Path) -> None:
    h = Harness(tmp_path / "state.db", Clock(T0 + 60_000))
    h.add("session.end", "late", T0 + 40_000, status="failure")
    doc = h.service.get("late")
    assert doc["state"] == "finished" and doc["start_seen"] is False
    h.add("session.start", "late", T0 + 10_000, kind="etl")
    doc = h.service.get("late")
    assert doc["state"] == "finished" and doc["status"] == "failure"
    assert doc["started_ms"] == T0 + 10_000 and doc["duration_s"] == 30.0
    assert doc["kind"] == "etl"
    # it counts once in the kind's history, with its real duration
    kinds = h.service.stats()["kinds"]
    assert kinds["etl"]["history"] == 1 and kinds["etl"]["duration_s"]["p50"] == 30.0
    h.close()


def test_no_event_for_the_idle_timeout_makes_it_stale_and_a_new_event_revives_it(
        tmp_path: Path) -> None:
    clock = Clock(T0)
    h = Harness(tmp_path / "state.db", clock, idle_timeout="5m")
    h.add("session.start", "idle", T0, kind="chat")
    clock.ms = T0 + 299_000
    h.service.refresh()
    assert h.service.get("idle")["state"] == "active"
    clock.ms = T0 + 301_000
    h.service.refresh()
    doc = h.service.get("idle")
    assert doc["state"] == "stale" and doc["duration_s"] == 0.0
    assert h.published[-1][1]["change"] == "update" and h.published[-1][1]["state"] == "stale"
    assert [s["id"] for s in h.service.list(state=["stale"])["sessions"]] == ["idle"]
    h.add("message", "idle", T0 + 302_000)
    assert h.service.get("idle")["state"] == "active"
    h.close()


def test_sessions_survive_a_restart_and_catch_up_with_the_event_log(tmp_path: Path) -> None:
    clock = Clock(T0 + 10_000)
    h = Harness(tmp_path / "state.db", clock)
    h.add("session.start", "r1", T0, kind="batch")
    h.add("session.start", "r2", T0, kind="batch")
    h.restart()
    assert h.service.get("r1")["state"] == "active"
    # an event stored but never applied (a crash in between) is applied at the next start
    from seismo.store.events import Event
    h.log.append([Event("session.end", "", "info", "", {"session": "r2", "status": "success"},
                        T0 + 5000)])
    h.restart()
    assert h.service.get("r2")["state"] == "finished"
    h.add("session.end", "r1", T0 + 8000, status="cancelled")
    assert h.service.get("r1")["status"] == "cancelled"
    h.close()


def test_list_filters_sorts_and_pages(tmp_path: Path) -> None:
    clock = Clock(T0 + 100_000)
    h = Harness(tmp_path / "state.db", clock)
    for i in range(25):
        h.add("session.start", f"p{i:02d}", T0 + i * 1000, kind="a" if i % 2 else "b",
              user="u")
        if i % 3 == 0:
            h.add("session.end", f"p{i:02d}", T0 + i * 1000 + (25 - i) * 100, status="success")
    seen: list[str] = []
    cursor = None
    while True:
        page = h.service.list(limit=10, cursor=cursor)
        seen += [s["id"] for s in page["sessions"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i:02d}" for i in reversed(range(25))]
    finished = h.service.list(state=["finished"], sort="duration", order="desc")["sessions"]
    durations = [s["duration_s"] for s in finished]
    assert len(finished) == 9 and durations == sorted(durations, reverse=True)
    longest = h.service.list(sort="duration", limit=3)["sessions"]
    assert [s["id"] for s in longest] == ["p01", "p02", "p04"]  # active ones, oldest first
    assert all(s["kind"] == "a" for s in h.service.list(kind="a", limit=100)["sessions"])
    window = h.service.list(start_ms=T0 + 20_000, end_ms=T0 + 22_000, state=["active"])
    assert {s["id"] for s in window["sessions"]} >= {"p20", "p22"}
    assert "p19" in {s["id"] for s in window["sessions"]}  # started before, still active
    h.close()


def test_bad_input_names_the_field_and_changes_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path / "state.db", Clock(T0))
    with pytest.raises(InvalidInput) as exc:
        h.add("session.end", "x", T0, status="done")
    assert exc.value.field == "events[0].attributes.status"
    with pytest.raises(InvalidInput) as exc:
        h.add("session.start", None, T0)
    assert exc.value.field == "events[0].attributes.session"
    assert h.log.count() == 0
    with pytest.raises(NotFound):
        h.service.get("x")
    for kwargs, field in (({"state": ["running"]}, "state"), ({"sort": "size"}, "sort"),
                          ({"order": "up"}, "order"), ({"cursor": "!!"}, "cursor")):
        with pytest.raises(InvalidInput) as exc:
            h.service.list(**kwargs)  # type: ignore[arg-type]
        assert exc.value.field == field
    h.close()


def test_retention_and_max_sessions_bound_the_table(tmp_path: Path) -> None:
    clock = Clock(T0)
    h = Harness(tmp_path / "state.db", clock, retention="1h", max_sessions=5)
    for i in range(8):
        h.add("session.start", f"m{i}", T0 + i)
        h.add("session.end", f"m{i}", T0 + i + 1, status="success")
    h.add("session.start", "alive", T0 + 100)
    assert h.service.prune(clock.ms) == 4
    assert {s["id"] for s in h.service.list()["sessions"]} == {"m4", "m5", "m6", "m7", "alive"}
    clock.ms = T0 + 2 * 3_600_000
    h.service.refresh()  # stale now, then pruned by age with the finished ones
    h.service.prune(clock.ms)
    assert h.service.list()["sessions"] == []
    h.close()
