"""The Teams channel: the incoming-webhook message envelope around one Adaptive Card."""

from __future__ import annotations

import json
from typing import Any

from seismo.notify import Reason, Teams
from tests.notify.samples import cpu_alert, cpu_notification


def _sent(notification: Any, **options: Any) -> dict[str, Any]:
    payload = Teams("room", **options).payload(notification)
    assert payload.content_type == "application/json"
    document: dict[str, Any] = json.loads(payload.body)
    return document


def test_envelope_and_card() -> None:
    n = cpu_notification(cpu_alert("web-1", "critical"), cpu_alert("web-2", resolved=True))
    sent = _sent(n)
    assert list(sent) == ["type", "attachments"]
    assert sent["type"] == "message"
    (attachment,) = sent["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.2"
    assert card["msteams"] == {"width": "Full"}
    banner, facts, first, second = card["body"]
    assert banner["type"] == "Container" and banner["style"] == "attention"
    assert banner["items"][0]["text"] == "[FIRING:1] HighCPU (infra)"
    assert facts["type"] == "FactSet"
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "Status": "firing (1 firing, 1 resolved)",
        "Severity": "critical",
        "Reason": "first",
        "Group": '{alertname="HighCPU"}',
        "Channel": "oncall",
    }
    assert first["type"] == "Container" and first["separator"] is True
    assert first["items"][0]["text"] == "FIRING: CPU 95% on web-1"
    assert first["items"][0]["color"] == "Attention"
    assert second["items"][0]["color"] == "Good"
    labels = {f["title"]: f["value"] for f in first["items"][1]["facts"]}
    assert labels == {"alertname": "HighCPU", "host": "web-1", "severity": "critical",
                      "team": "infra"}
    assert first["selectAction"] == {"type": "Action.OpenUrl",
                                     "url": "http://seismo.example:8765/alerts/fp-web-1"}
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open seismo",
                                "url": "http://seismo.example:8765"}]
    assert all(block["wrap"] for block in _text_blocks(card))


def _text_blocks(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "TextBlock" else []
        return found + [b for v in node.values() for b in _text_blocks(v)]
    if isinstance(node, list):
        return [b for v in node for b in _text_blocks(v)]
    return []


def test_resolved_group_is_styled_good_and_lists_at_most_max_alerts() -> None:
    alerts = [cpu_alert(f"web-{i}", resolved=True) for i in range(4)]
    card = _sent(cpu_notification(*alerts, reason=Reason.RESOLVED), max_alerts=2)
    body = card["attachments"][0]["content"]["body"]
    assert body[0]["style"] == "good"
    assert len([b for b in body if b.get("separator")]) == 2
    assert body[-1]["text"] == "2 more alerts not shown"


def test_no_link_without_a_web_url() -> None:
    alert = cpu_alert("web-1")
    alert = type(alert)(**{**alert.__dict__, "generator_url": "javascript:alert(1)"})
    n = cpu_notification(alert)
    n = type(n)(**{**n.__dict__, "external_url": ""})
    card = _sent(n)["attachments"][0]["content"]
    assert "actions" not in card
    assert "selectAction" not in card["body"][2]
