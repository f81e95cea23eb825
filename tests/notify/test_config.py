"""Channel configuration: every field checked, secrets write-only, updates keep secrets."""

from __future__ import annotations

from typing import Any

import pytest

from seismo.errors import InvalidInput
from seismo.notify import AlertmanagerForward, Email, Slack, Teams, Webhook
from seismo.notify.config import (
    PLACEHOLDER,
    ChannelSpec,
    merge_secrets,
    parse_channel,
    parse_channels,
)
from seismo.notify.log import Log

SLACK_URL = "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"

WEBHOOK = {
    "name": "oncall",
    "type": "webhook",
    "url": "http://127.0.0.1:9000/hook",
    "headers": {"X-Scope-OrgID": "infra", "X-Api-Key": "key-5f1c9a"},
    "bearer_token": "tok-8d2e4b",
    "max_alerts": 5,
    "timeout_s": 2,
}
EMAIL = {
    "name": "mail",
    "type": "email",
    "smtp_host": "smtp.example.com",
    "username": "seismo",
    "password": "pw-77a1c3",
    "from": "seismo <seismo@example.com>",
    "to": ["ops@example.com", "dev@example.com"],
}


def _error(doc: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_channel(doc)
    return caught.value


def test_webhook_keeps_options_and_secrets_apart() -> None:
    spec = parse_channel(WEBHOOK)
    assert (spec.name, spec.type, spec.max_per_minute, spec.send_resolved) == (
        "oncall", "webhook", 0, True)
    assert spec.options["url"] == "http://127.0.0.1:9000/hook"
    assert spec.options["headers"] == {"X-Scope-OrgID": "infra"}
    assert spec.secrets == {"headers.X-Api-Key": "key-5f1c9a", "bearer_token": "tok-8d2e4b"}
    assert spec.url == "http://127.0.0.1:9000/hook"
    assert spec.timeout_s == 2.0
    assert spec.headers() == {"X-Scope-OrgID": "infra", "X-Api-Key": "key-5f1c9a",
                              "Authorization": "Bearer tok-8d2e4b"}
    assert spec.channel() == Webhook("oncall", max_alerts=5)


def test_public_shows_every_field_and_no_secret() -> None:
    spec = parse_channel(WEBHOOK)
    assert spec.public() == {
        "name": "oncall",
        "type": "webhook",
        "url": "http://127.0.0.1:9000/hook",
        "headers": {"X-Scope-OrgID": "infra", "X-Api-Key": PLACEHOLDER},
        "bearer_token": PLACEHOLDER,
        "max_alerts": 5,
        "timeout_s": 2.0,
        "max_per_minute": 0,
        "send_resolved": True,
    }
    for secret in ("tok-8d2e4b", "key-5f1c9a"):
        assert secret not in repr(spec.public())
        assert secret not in repr(spec)


@pytest.mark.parametrize(("kind", "url", "shown"), [
    ("slack", SLACK_URL, "https://hooks.slack.com/<secret>"),
    ("teams", TEAMS_URL, "https://example.webhook.office.com/<secret>"),
])
def test_slack_and_teams_urls_are_secrets(kind: str, url: str, shown: str) -> None:
    spec = parse_channel({"name": "chat", "type": kind, "url": url})
    assert spec.secrets == {"url": url}
    assert spec.url == url
    assert spec.public() == {"name": "chat", "type": kind, "url": shown, "max_alerts": 10,
                             "timeout_s": 5.0, "max_per_minute": 0, "send_resolved": True}
    assert url not in repr(spec)
    assert spec.channel() == (Slack if kind == "slack" else Teams)("chat", 10)


def test_email_defaults_and_public_view() -> None:
    spec = parse_channel(EMAIL)
    assert spec.public() == {
        "name": "mail", "type": "email", "smtp_host": "smtp.example.com", "smtp_port": 587,
        "starttls": True, "ssl": False, "username": "seismo", "password": PLACEHOLDER,
        "from": "seismo <seismo@example.com>", "to": ["ops@example.com", "dev@example.com"],
        "max_alerts": 50, "timeout_s": 10.0, "max_per_minute": 0, "send_resolved": True,
    }
    assert spec.channel() == Email("mail", "seismo <seismo@example.com>",
                                   ("ops@example.com", "dev@example.com"), 50)
    tls = parse_channel({**EMAIL, "ssl": True})
    assert (tls.options["smtp_port"], tls.options["starttls"]) == (465, False)


def test_alertmanager_log_and_common_keys() -> None:
    spec = parse_channel({"name": "am", "type": "alertmanager",
                          "url": "http://am.example:9093/prefix/", "bearer_token": "t-1",
                          "max_per_minute": 6, "send_resolved": False})
    assert spec.url == "http://am.example:9093/prefix/api/v2/alerts"
    assert (spec.max_per_minute, spec.send_resolved) == (6, False)
    assert spec.channel() == AlertmanagerForward("am")
    assert spec.public()["bearer_token"] == PLACEHOLDER
    log = parse_channel({"name": "log", "type": "log"})
    assert log.channel() == Log("log")
    assert log.public() == {"name": "log", "type": "log", "max_per_minute": 0,
                            "send_resolved": True}


@pytest.mark.parametrize("doc", [
    WEBHOOK,
    EMAIL,
    {"name": "s", "type": "slack", "url": SLACK_URL, "max_alerts": 3, "send_resolved": False},
    {"name": "w", "type": "webhook", "url": "https://h.example/x",
     "basic_auth": {"username": "u", "password": "p"}},
])
def test_document_round_trips_through_parse(doc: dict[str, Any]) -> None:
    spec = parse_channel(doc)
    assert parse_channel(spec.document()) == spec


@pytest.mark.parametrize(("doc", "field", "reason"), [
    ([], "channel", "must be an object"),
    ({"type": "log"}, "channel.name", "is required"),
    ({"name": "has space", "type": "log"}, "channel.name", "A-Z"),
    ({"name": "x" * 65, "type": "log"}, "channel.name", "1 to 64"),
    ({"name": "a"}, "channel.type", "is required"),
    ({"name": "a", "type": "pager"}, "channel.type", "unknown channel type 'pager'"),
    ({"name": "a", "type": "log", "url": "http://x/"}, "channel.url", "unknown key"),
    ({"name": "a", "type": "webhook"}, "channel.url", "is required"),
    ({"name": "a", "type": "webhook", "url": 5}, "channel.url", "must be a string"),
    ({"name": "a", "type": "webhook", "url": "ftp://h/x"}, "channel.url", "http or https"),
    ({"name": "a", "type": "webhook", "url": "http:///x"}, "channel.url", "no host"),
    ({"name": "a", "type": "webhook", "url": "http://h:70000/"}, "channel.url", "bad port"),
    ({"name": "a", "type": "webhook", "url": "http://h:0/"}, "channel.url", "bad port"),
    ({"name": "a", "type": "webhook", "url": "http://u:p@h/"}, "channel.url", "basic_auth"),
    ({"name": "a", "type": "webhook", "url": "http://h/x y"}, "channel.url", "white space"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "headers": []},
     "channel.headers", "must be an object"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "headers": {"Bad Name": "v"}},
     "channel.headers.Bad Name", "header name"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "headers": {"X-A": "v\r\nX-B: 1"}},
     "channel.headers.X-A", "line breaks"),
    ({"name": "a", "type": "webhook", "url": "http://h/",
      "headers": {"Authorization": "Bearer x"}}, "channel.headers.Authorization", "bearer_token"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "bearer_token": 1},
     "channel.bearer_token", "must be a string"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "basic_auth": {"username": "u"}},
     "channel.basic_auth.password", "is required"),
    ({"name": "a", "type": "webhook", "url": "http://h/",
      "basic_auth": {"username": "u", "password": "p", "realm": "r"}},
     "channel.basic_auth.realm", "unknown key"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "bearer_token": "t",
      "basic_auth": {"username": "u", "password": "p"}}, "channel.basic_auth", "not both"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "max_alerts": -1},
     "channel.max_alerts", "between 0"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "max_alerts": "5"},
     "channel.max_alerts", "must be an integer"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "timeout_s": 0},
     "channel.timeout_s", "more than 0"),
    ({"name": "a", "type": "webhook", "url": "http://h/", "timeout_s": True},
     "channel.timeout_s", "number of seconds"),
    ({"name": "a", "type": "log", "max_per_minute": 1.5}, "channel.max_per_minute", "integer"),
    ({"name": "a", "type": "log", "send_resolved": "yes"}, "channel.send_resolved",
     "true or false"),
    ({"name": "a", "type": "slack"}, "channel.url", "is required"),
    ({"name": "a", "type": "teams", "url": "teams.example/x"}, "channel.url", "http or https"),
    ({"name": "a", "type": "alertmanager", "url": "http://am/?x=1"}, "channel.url", "base URL"),
    ({**EMAIL, "smtp_host": None}, "channel.smtp_host", "is required"),
    ({**EMAIL, "smtp_host": "bad host"}, "channel.smtp_host", "host name"),
    ({**EMAIL, "smtp_port": 0}, "channel.smtp_port", "between 1 and 65535"),
    ({**EMAIL, "ssl": True, "starttls": True}, "channel.starttls", "exclude each other"),
    ({**EMAIL, "password": None}, "channel.password", "required when username"),
    ({**EMAIL, "username": None}, "channel.username", "required when password"),
    ({**EMAIL, "from": "nobody"}, "channel.from", "email address"),
    ({**EMAIL, "to": "ops@example.com"}, "channel.to", "non-empty list"),
    ({**EMAIL, "to": []}, "channel.to", "non-empty list"),
    ({**EMAIL, "to": ["ok@example.com", "x\n@example.com"]}, "channel.to[1]", "email address"),
    ({**EMAIL, "to": ["ok@example.com", 7]}, "channel.to[1]", "email address"),
])
def test_bad_fields_name_the_field_and_the_reason(doc: Any, field: str, reason: str) -> None:
    error = _error(doc)
    assert error.field == field
    assert error.message.startswith(f"{field}: ")
    assert reason in error.message


def test_errors_never_quote_a_secret_url() -> None:
    error = _error({"name": "a", "type": "slack", "url": "ftp://hooks.slack.com/T/B/SECRET"})
    assert "SECRET" not in error.message


def test_field_prefix_and_channel_lists() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_channels([{"name": "a", "type": "log"}, {"name": "b", "type": "webhook"}])
    assert caught.value.field == "channels[1].url"
    with pytest.raises(InvalidInput) as caught:
        parse_channels([{"name": "a", "type": "log"}, {"name": "a", "type": "log"}])
    assert caught.value.field == "channels[1].name"
    assert "duplicate" in caught.value.message
    specs = parse_channels([{"name": "a", "type": "log"}, WEBHOOK])
    assert [s.name for s in specs] == ["a", "oncall"]


def test_update_sending_placeholders_back_keeps_the_secrets() -> None:
    old = parse_channel(WEBHOOK)
    new = parse_channel({**old.public(), "max_alerts": 9})
    assert new.unset_secrets == ("headers.X-Api-Key", "bearer_token")
    merged = merge_secrets(new, old)
    assert merged.secrets == old.secrets
    assert merged.options["max_alerts"] == 9
    assert merged.unset_secrets == ()
    fresh = merge_secrets(parse_channel({**old.public(), "bearer_token": "tok-new"}), old)
    assert fresh.secrets["bearer_token"] == "tok-new"


def test_slack_url_placeholder_keeps_the_url() -> None:
    old = parse_channel({"name": "s", "type": "slack", "url": SLACK_URL})
    merged = merge_secrets(parse_channel({**old.public(), "max_alerts": 2}), old)
    assert merged.secrets["url"] == SLACK_URL
    assert merged.options["max_alerts"] == 2


@pytest.mark.parametrize(("old", "change", "field"), [
    # no stored value to keep
    ({"name": "a", "type": "webhook", "url": "http://h/"}, {"bearer_token": PLACEHOLDER},
     "channel.bearer_token"),
    # a stored token would follow the new URL: it must be sent again
    (WEBHOOK, {"url": "http://elsewhere.example/hook"}, "channel.headers.X-Api-Key"),
    (EMAIL, {"smtp_host": "smtp.elsewhere.example"}, "channel.password"),
    ({"name": "s", "type": "slack", "url": SLACK_URL},
     {"url": "https://evil.example/<secret>"}, "channel.url"),
])
def test_placeholders_without_a_matching_secret_are_refused(
        old: dict[str, Any], change: dict[str, Any], field: str) -> None:
    stored = parse_channel(old)
    new = parse_channel({**stored.public(), **change})
    with pytest.raises(InvalidInput) as caught:
        merge_secrets(new, stored)
    assert caught.value.field == field


def test_spec_is_a_frozen_value() -> None:
    spec = parse_channel({"name": "a", "type": "log"})
    assert spec == ChannelSpec(name="a", type="log")
    with pytest.raises(AttributeError):
        spec.name = "b"  # type: ignore[misc]
