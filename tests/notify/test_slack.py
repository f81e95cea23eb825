"""The Slack channel: incoming-webhook JSON with text fallback, blocks and coloured attachments."""

from __future__ import annotations

import json
from typing import Any

from seismo.notify import Reason, Slack
from seismo.notify.slack import HEADER_LIMIT, mrkdwn
from tests.notify.samples import cpu_alert, cpu_notification


def _sent(notification: Any, **options: Any) -> dict[str, Any]:
    payload = Slack("chat", **options).payload(notification)
    assert payload.content_type == "application/json"
    document: dict[str, Any] = json.loads(payload.body)
    return document


def test_message_fields() -> None:
    n = cpu_notification(cpu_alert("web-1", "critical"), cpu_alert("web-2", resolved=True))
    sent = _sent(n)
    assert set(sent) == {"text", "blocks", "attachments"}
    assert sent["text"] == "[FIRING:1] HighCPU (infra): CPU 95% on web-1"
    header, section, context = sent["blocks"]
    assert header == {"type": "header",
                      "text": {"type": "plain_text", "text": "[FIRING:1] HighCPU (infra)",
                               "emoji": True}}
    assert section["type"] == "section"
    assert [f["type"] for f in section["fields"]] == ["mrkdwn"] * 4
    assert [f["text"] for f in section["fields"]] == [
        "*Status*\nfiring (1 firing, 1 resolved)",
        "*Severity*\ncritical",
        "*Reason*\nfirst",
        '*Group*\n{alertname="HighCPU"}',
    ]
    assert context["type"] == "context"
    assert context["elements"] == [{
        "type": "mrkdwn",
        "text": "seismo · oncall · <http://seismo.example:8765|open seismo>",
    }]
    first, second = sent["attachments"]
    assert first["color"] == "#B71C1C"  # critical
    assert second["color"] == "#2E7D32"  # resolved
    assert first["fallback"] == "FIRING: CPU 95% on web-1"
    (block,) = first["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"].splitlines() == [
        "*FIRING: CPU 95% on web-1*",
        "alertname=HighCPU · host=web-1 · severity=critical · team=infra",
        "<http://seismo.example:8765/alerts/fp-web-1|source>",
    ]


def test_labels_cannot_mention_everyone_or_forge_links() -> None:
    alert = cpu_alert("<!channel>", summary="<https://evil.example|click> & run")
    sent = _sent(cpu_notification(alert))
    attachment = sent["attachments"][0]
    parsed = [sent["text"], attachment["fallback"], attachment["blocks"][0]["text"]["text"],
              *(f["text"] for f in sent["blocks"][1]["fields"]),
              sent["blocks"][2]["elements"][0]["text"]]
    for text in parsed:  # every field Slack parses for mentions and links
        assert "<!channel>" not in text and "<https://evil" not in text
    # a header is plain_text: shown as is, never parsed
    assert "<!channel>" in sent["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in sent["attachments"][0]["blocks"][0]["text"]["text"]
    assert sent["text"].endswith("&lt;https://evil.example|click&gt; &amp; run")


def test_only_web_links_become_links() -> None:
    alert = cpu_alert("web-1")
    alert = type(alert)(**{**alert.__dict__, "generator_url": "javascript:alert(1)"})
    text = _sent(cpu_notification(alert))["attachments"][0]["blocks"][0]["text"]["text"]
    assert "javascript:" not in text


def test_long_text_is_clipped_to_slacks_limits() -> None:
    n = cpu_notification(cpu_alert("h" * 5000, summary="s" * 5000, description="&" * 5000))
    sent = _sent(n)
    assert len(sent["blocks"][0]["text"]["text"]) <= HEADER_LIMIT
    assert all(len(f["text"]) <= 2000 for f in sent["blocks"][1]["fields"])
    assert len(sent["attachments"][0]["blocks"][0]["text"]["text"]) <= 3000
    assert len(sent["text"]) <= 3000


def test_clipping_never_cuts_an_entity_in_two() -> None:
    for n in range(1, 12):
        clipped = mrkdwn("a" * n + "<" * 20, 16)
        assert len(clipped) <= 16 and clipped.endswith("…")
        assert clipped.rstrip("…").replace("&lt;", "").isalpha()


def test_many_alerts_show_the_first_and_count_the_rest() -> None:
    n = cpu_notification(*(cpu_alert(f"web-{i}") for i in range(13)), reason=Reason.NEW_ALERTS)
    sent = _sent(n, max_alerts=10)
    assert len(sent["attachments"]) == 10
    assert "3 more alerts not shown" in sent["blocks"][2]["elements"][0]["text"]
    assert "*Reason*\nnew alerts" in [f["text"] for f in sent["blocks"][1]["fields"]]
