"""What every channel shares: the protocol, retry decisions, valid payloads for any labels."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.notify import (
    Alert,
    AlertmanagerForward,
    Channel,
    Email,
    Notification,
    Reason,
    Slack,
    Teams,
    Webhook,
    fingerprint_of,
    group_key,
    should_retry,
)

CHANNELS: list[Channel] = [
    Webhook("hook"),
    Slack("chat"),
    Teams("room"),
    Email("mail", sender="seismo@example.org", to=("oncall@example.org",)),
    AlertmanagerForward("upstream"),
]


def test_every_channel_has_its_own_kind() -> None:
    kinds = [type(c).kind for c in CHANNELS]
    assert kinds == ["webhook", "slack", "teams", "email", "alertmanager"]


@pytest.mark.parametrize(
    ("status", "retry"),
    [(200, False), (400, False), (401, False), (404, False), (408, True), (429, True),
     (500, True), (502, True), (503, True)],
)
def test_http_channels_retry_server_errors_and_rate_limits_only(status: int, retry: bool) -> None:
    assert should_retry(status) is retry
    for channel in CHANNELS:
        if not isinstance(channel, Email):
            assert channel.should_retry(status) is retry


text = st.text(max_size=40)
label_sets = st.dictionaries(text, text, max_size=6)


@st.composite
def notifications(draw: st.DrawFn) -> Notification:
    alerts = []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(label_sets)
        resolved = draw(st.booleans())
        starts = draw(st.integers(0, 4_102_444_800_000))  # up to 2100
        alerts.append(Alert(
            fingerprint=fingerprint_of(labels),
            status="resolved" if resolved else "firing",
            labels=labels,
            annotations=draw(label_sets),
            starts_at_ms=starts,
            ends_at_ms=starts + draw(st.integers(0, 10**9)) if resolved else None,
            generator_url=draw(st.one_of(st.just(""), text.map("http://x.example/".__add__))),
            value=draw(st.one_of(st.none(), st.floats())),
        ))
    group_labels = draw(label_sets)
    return Notification(
        receiver=draw(text), group_key=group_key(group_labels), group_labels=group_labels,
        alerts=tuple(alerts), reason=draw(st.sampled_from(list(Reason))),
        ts_ms=draw(st.integers(0, 4_102_444_800_000)), external_url=draw(text),
    )


@settings(max_examples=60, deadline=None)
@given(notifications())
def test_any_labels_give_valid_payloads_and_webhook_labels_round_trip(n: Notification) -> None:
    for channel in CHANNELS:
        payload = channel.payload(n)
        if isinstance(channel, Email):
            msg = message_from_bytes(payload.body, policy=policy.default)
            assert not msg.defects
            assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        else:
            content_type, body = payload
            assert content_type == "application/json"
            json.loads(body.decode("utf-8"))
    slack = Slack("chat").document(n)
    assert len(slack["blocks"][0]["text"]["text"]) <= 150
    assert all(len(f["text"]) <= 2000 for f in slack["blocks"][1]["fields"])
    assert len(slack["text"]) <= 3000
    assert all(len(a["blocks"][0]["text"]["text"]) <= 3000 for a in slack["attachments"])
    sent = json.loads(Webhook("hook").payload(n).body)
    assert [a["labels"] for a in sent["alerts"]] == [dict(a.labels) for a in n.alerts]
    assert [a["annotations"] for a in sent["alerts"]] == [dict(a.annotations) for a in n.alerts]
    assert [a["fingerprint"] for a in sent["alerts"]] == [a.fingerprint for a in n.alerts]
    assert sent["groupLabels"] == dict(n.group_labels)
    assert sent["groupKey"] == n.group_key
    assert sent["commonLabels"] == n.common_labels
