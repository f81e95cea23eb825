"""The outbox against real loopback receivers: at least once, exactly once when all goes well."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seismo.errors import InvalidInput, NotFound, Overloaded
from seismo.notify import Alert, Notification, Reason
from seismo.notify.config import ChannelSpec, parse_channel
from seismo.notify.outbox import Outbox, from_dict, to_dict
from tests.notify.samples import cpu_alert, cpu_notification
from tests.notify.test_delivery import Receiver, Request, free_port


def numbered(i: int) -> Notification:
    """A notification told apart from the others by its group key."""
    return Notification(
        receiver="hook", group_key=f"{{}}:{{n=\"{i}\"}}", group_labels={"n": str(i)},
        alerts=(cpu_alert(f"web-{i}"),), reason=Reason.FIRST, ts_ms=1_795_421_405_508 + i,
    )


def keys(receiver: Receiver) -> Counter[str]:
    return Counter(json.loads(r.body)["groupKey"] for r in receiver.requests)


def channels(**specs: ChannelSpec) -> Callable[[], dict[str, ChannelSpec]]:
    return lambda: dict(specs)


def hook(url: str, **extra: Any) -> ChannelSpec:
    return parse_channel({"name": "hook", "type": "webhook", "url": url, **extra})


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_receiver_that_comes_back_gets_everything_once_in_order(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: connection refused
    spec = hook(f"http://127.0.0.1:{port}/hook")
    with Outbox(tmp_path / "state.db", channels(hook=spec), max_attempts=1000,
                backoff_min_s=0.02, backoff_max_s=0.1) as outbox:
        outbox.start()
        ids = [outbox.put("hook", numbered(i)) for i in range(20)]
        wait_for(lambda: any(r["attempts"] >= 3 for r in outbox.list()))
        assert outbox.stats()["pending"] == 20
        receiver = Receiver(port=port)
        try:
            assert outbox.drain(10)
            assert keys(receiver) == Counter({numbered(i).group_key: 1 for i in range(20)})
            # one delivery at a time per channel, oldest first
            assert [json.loads(r.body)["groupKey"] for r in receiver.requests] == [
                numbered(i).group_key for i in range(20)]
            assert outbox.stats() == {"pending": 0, "sent": 20, "dead": 0}
            rows = {r["id"]: r for r in outbox.list(state="sent")}
            assert sorted(rows) == ids
            assert rows[ids[-1]]["attempts"] == 1  # only the oldest probed the dead receiver
            assert rows[ids[0]]["attempts"] > 1
            assert all(r["status"] == 200 and r["sent_ms"] for r in rows.values())
        finally:
            receiver.close()


def test_notifications_stored_before_a_restart_are_sent_once(tmp_path: Path,
                                                              receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    first = Outbox(db, channels(hook=hook(receiver.url())))
    for i in range(10):
        first.put("hook", numbered(i))
    first.close()  # never started: as if the process died before sending
    assert receiver.requests == []
    with Outbox(db, channels(hook=hook(receiver.url()))) as second:
        assert second.stats()["pending"] == 10
        second.start()
        assert second.drain(10)
    assert keys(receiver) == Counter({numbered(i).group_key: 1 for i in range(10)})
    with Outbox(db, channels(hook=hook(receiver.url()))) as third:
        third.start()
        assert third.drain(1)
        assert third.stats() == {"pending": 0, "sent": 10, "dead": 0}
    assert len(receiver.requests) == 10


def test_rows_that_failed_before_a_restart_are_retried(tmp_path: Path,
                                                       receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    receiver.answer = lambda request: (503, b"busy")
    with Outbox(db, channels(hook=hook(receiver.url())), backoff_min_s=60) as first:
        first.put("hook", numbered(1))
        first.start()
        wait_for(lambda: len(receiver.requests) == 1)
        wait_for(lambda: first.list()[0]["attempts"] == 1)
        (row,) = first.list()
    assert (row["state"], row["status"]) == ("pending", 503)
    assert row["last_error"] == "HTTP 503 Service Unavailable: busy"
    receiver.answer = lambda request: (200, b"ok")
    clock = [row["next_attempt_ms"]]  # the backoff has passed
    with Outbox(db, channels(hook=hook(receiver.url())), clock=lambda: clock[0]) as second:
        second.start()
        assert second.drain(10)
        assert second.list()[0]["attempts"] == 2
    assert len(receiver.requests) == 2


def test_a_row_in_flight_when_the_process_stops_is_sent_again(tmp_path: Path,
                                                               receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    release = threading.Event()

    def slow(request: Request) -> tuple[int, bytes]:
        release.wait(5)
        return 200, b"ok"

    receiver.answer = slow
    first = Outbox(db, channels(hook=hook(receiver.url())))
    first.put("hook", numbered(1))
    first.start()
    wait_for(lambda: len(receiver.requests) == 1)
    assert not first.stop(0.1)  # still waiting for the receiver: as if the process died
    first.close()
    with Outbox(db, channels(hook=hook(receiver.url()))) as second:
        assert second.stats()["pending"] == 1
        release.set()
        second.start()
        assert second.drain(10)
    # at least once: the receiver got it twice, and the row is sent
    assert keys(receiver) == Counter({numbered(1).group_key: 2})


def test_an_injected_clock_decides_when_a_retry_is_due(tmp_path: Path,
                                                       receiver: Receiver) -> None:
    answers = iter([(503, b"busy"), (200, b"ok")])
    receiver.answer = lambda request: next(answers)
    now = [1_000_000]
    with Outbox(tmp_path / "state.db", channels(hook=hook(receiver.url())),
                clock=lambda: now[0], backoff_min_s=10, backoff_max_s=10) as outbox:
        outbox.start()
        outbox.put("hook", numbered(1))
        wait_for(lambda: outbox.list()[0]["attempts"] == 1)
        (row,) = outbox.list()
        assert 1_005_000 <= row["next_attempt_ms"] <= 1_010_000  # 10 s, equal jitter
        time.sleep(0.2)
        assert len(receiver.requests) == 1  # not due while the clock stands still
        now[0] = row["next_attempt_ms"]
        outbox.wake()
        assert outbox.drain(10)
    assert len(receiver.requests) == 2


def test_a_4xx_is_dead_at_once_and_retry_sends_it_again(tmp_path: Path,
                                                        receiver: Receiver) -> None:
    receiver.answer = lambda request: (400, b"bad payload")
    with Outbox(tmp_path / "state.db", channels(hook=hook(receiver.url())),
                backoff_min_s=0.02, backoff_max_s=0.1) as outbox:
        outbox.start()
        row_id = outbox.put("hook", numbered(7))
        assert outbox.drain(10)
        (dead,) = outbox.list(state="dead")
        assert dead == {
            "id": row_id, "channel": "hook", "state": "dead", "attempts": 1,
            "created_ms": dead["created_ms"], "next_attempt_ms": None, "sent_ms": None,
            "last_error": "HTTP 400 Bad Request: bad payload", "status": 400,
            "group_key": '{}:{n="7"}', "reason": "first", "alerts": 1,
        }
        assert len(receiver.requests) == 1
        receiver.answer = lambda request: (200, b"ok")
        assert outbox.retry(row_id)["state"] == "pending"
        assert outbox.drain(10)
        assert len(receiver.requests) == 2
        assert receiver.requests[0].body == receiver.requests[1].body
        (sent,) = outbox.list(state="sent")
        assert (sent["id"], sent["attempts"], sent["status"]) == (row_id, 1, 200)
        with pytest.raises(InvalidInput):
            outbox.retry(row_id)  # already sent
        with pytest.raises(NotFound):
            outbox.retry(row_id + 100)


def test_max_attempts_then_dead(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answer = lambda request: (503, b"down for maintenance")
    with Outbox(tmp_path / "state.db", channels(hook=hook(receiver.url())), max_attempts=3,
                backoff_min_s=0.02, backoff_max_s=0.1) as outbox:
        outbox.start()
        outbox.put("hook", numbered(1))
        assert outbox.drain(10)
        (dead,) = outbox.list(state="dead")
        assert dead["attempts"] == 3
        assert dead["last_error"] == (
            "gave up after 3 attempts: HTTP 503 Service Unavailable: down for maintenance")
        assert len(receiver.requests) == 3


def test_a_channel_that_no_longer_exists_is_dead(tmp_path: Path) -> None:
    with Outbox(tmp_path / "state.db", channels()) as outbox:
        outbox.start()
        outbox.put("gone", numbered(1))
        assert outbox.drain(10)
        (dead,) = outbox.list(state="dead", channel="gone")
        assert dead["last_error"] == "channel 'gone' no longer exists"


def test_the_current_spec_is_used_at_each_attempt(tmp_path: Path) -> None:
    old, new = Receiver(), Receiver()
    specs = {"hook": hook(old.url())}
    try:
        with Outbox(tmp_path / "state.db", lambda: specs) as outbox:
            outbox.put("hook", numbered(1))
            specs["hook"] = hook(new.url(), bearer_token="tok-new")
            outbox.start()
            assert outbox.drain(10)
        assert old.requests == []
        (request,) = new.requests
        assert request.headers["authorization"] == "Bearer tok-new"
    finally:
        old.close()
        new.close()


def test_secrets_never_reach_rows_or_logs(tmp_path: Path, receiver: Receiver,
                                          caplog: pytest.LogCaptureFixture) -> None:
    def echo(request: Request) -> tuple[int, bytes]:
        return 500, f"{request.path} {request.headers.get('authorization')}".encode()

    receiver.answer = echo
    specs = {
        "hook": hook(receiver.url(), bearer_token="tok-8d2e4b"),
        "chat": parse_channel({"name": "chat", "type": "slack",
                               "url": receiver.url("/services/T1/B1/sekrit77")}),
    }
    with caplog.at_level(logging.DEBUG), \
            Outbox(tmp_path / "state.db", lambda: specs, max_attempts=2,
                   backoff_min_s=0.02, backoff_max_s=0.1) as outbox:
        outbox.start()
        outbox.put("hook", numbered(1))
        outbox.put("chat", numbered(2))
        assert outbox.drain(10)
        rows = outbox.list()
    assert [r["state"] for r in rows] == ["dead", "dead"]
    assert "<secret>" in rows[0]["last_error"] and "<secret>" in rows[1]["last_error"]
    shown = json.dumps(rows) + caplog.text + json.dumps([s.public() for s in specs.values()])
    shown += repr(specs)
    for secret in ("tok-8d2e4b", "sekrit77"):
        assert secret not in shown


def test_put_is_bounded_and_rows_can_be_deleted(tmp_path: Path) -> None:
    with Outbox(tmp_path / "state.db", channels(), max_pending=2) as outbox:
        first = outbox.put("hook", numbered(1))
        outbox.put("hook", numbered(2))
        with pytest.raises(Overloaded):
            outbox.put("hook", numbered(3))
        outbox.delete(first)
        outbox.put("hook", numbered(3))
        assert outbox.stats() == {"pending": 2, "sent": 0, "dead": 0}
        with pytest.raises(NotFound):
            outbox.delete(first)
        assert [r["group_key"] for r in outbox.list(limit=1)] == ['{}:{n="3"}']
        with pytest.raises(InvalidInput) as caught:
            outbox.list(state="lost")
        assert caught.value.field == "state"
        with pytest.raises(InvalidInput):
            outbox.list(limit=0)


def test_stop_returns_promptly_and_start_resumes(tmp_path: Path, receiver: Receiver) -> None:
    with Outbox(tmp_path / "state.db", channels(hook=hook(receiver.url()))) as outbox:
        outbox.start()
        started = time.monotonic()
        assert outbox.stop(5)
        assert time.monotonic() - started < 2
        outbox.put("hook", numbered(1))
        time.sleep(0.1)
        assert receiver.requests == []
        outbox.start()
        assert outbox.drain(10)
    assert len(receiver.requests) == 1


def test_a_notification_round_trips_through_json() -> None:
    notification = cpu_notification(cpu_alert("web-1", "critical"),
                                    cpu_alert("web-2", resolved=True))
    assert from_dict(json.loads(json.dumps(to_dict(notification)))) == notification


text = st.text(max_size=20)


@given(
    labels=st.dictionaries(text, text, max_size=5),
    annotations=st.dictionaries(text, text, max_size=3),
    value=st.none() | st.floats(allow_nan=False),
    ends=st.none() | st.integers(0, 2**53),
    reason=st.sampled_from(list(Reason)),
)
def test_round_trip_property(labels: dict[str, str], annotations: dict[str, str],
                             value: float | None, ends: int | None, reason: Reason) -> None:
    alert = Alert(fingerprint="f", status="resolved" if ends else "firing", labels=labels,
                  annotations=annotations, starts_at_ms=1, ends_at_ms=ends, value=value)
    notification = Notification(receiver="r", group_key="{}:{}", group_labels=labels,
                                alerts=(alert,), reason=reason, ts_ms=5)
    assert from_dict(json.loads(json.dumps(to_dict(notification)))) == notification


def test_nan_values_survive_storage() -> None:
    alert = Alert(fingerprint="f", status="firing", labels={}, value=math.nan)
    notification = Notification(receiver="r", group_key="k", group_labels={},
                                alerts=(alert,), reason=Reason.FIRST)
    (back,) = from_dict(json.loads(json.dumps(to_dict(notification)))).alerts
    assert back.value is not None and math.isnan(back.value)


def test_a_metadata_address_is_dead_lettered_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: attempts.append(a))
    with Outbox(tmp_path / "state.db", channels(hook=hook("http://169.254.169.254/")),
                backoff_min_s=0.02, backoff_max_s=0.1) as outbox:
        outbox.start()
        outbox.put("hook", numbered(1))
        assert outbox.drain(10)
        (dead,) = outbox.list(state="dead")
        assert dead["attempts"] == 1
        assert dead["last_error"] == (
            "refused to connect to 169.254.169.254: 169.254.169.254 is a link-local or cloud "
            "metadata address (169.254.0.0/16 in security.outbound_deny); see "
            "docs/security.md#outbound-connections")
    assert attempts == []
