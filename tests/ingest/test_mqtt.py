"""MQTT topic mapping and payloads (against a real broker: tests/protocols)."""

from __future__ import annotations

import pytest

from seismo.config import MqttSubscription
from seismo.ingest.mqtt import PayloadError, fill, read_payload, wildcards


def test_wildcards_and_templates() -> None:
    assert wildcards("factory/+/power", "factory/m1/power") == (["m1"], "")
    assert wildcards("factory/+/power", "factory/m1/heat") is None
    assert wildcards("factory/+/power", "factory/m1/power/x") is None
    assert wildcards("site/+/#", "site/a/b/c") == (["a"], "b/c")
    assert fill("machine_<+1>_<#>", ["m1"], "b/c") == "machine_m1_b/c"
    assert fill("<+2>", ["m1"], "") == ""


@pytest.mark.parametrize(("payload", "path", "value"), [
    (b"12.5", "", 12.5), (b" 7\n", "", 7.0), (b'{"value": 3}', "", 3.0), (b"4", "", 4.0),
    (b'{"data": {"power": "1.5e3"}}', "data.power", 1500.0), (b"true", "", 1.0),
])
def test_payloads(payload: bytes, path: str, value: float) -> None:
    sub = MqttSubscription(topic="t", metric="m", value=path)
    assert read_payload(payload, sub, now_ms=9) == (9, value)


def test_timestamp_field_in_seconds_or_ms() -> None:
    sub = MqttSubscription(topic="t", metric="m", timestamp="ts")
    assert read_payload(b'{"value": 1, "ts": 1700000000}', sub, 0) == (1_700_000_000_000, 1)
    assert read_payload(b'{"value": 1, "ts": 1700000000123}', sub, 0)[0] == 1_700_000_000_123


@pytest.mark.parametrize("payload", [b"abc", b'{"v": 1}', b'{"value": "x"}', b"[1]", b""])
def test_bad_payloads(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        read_payload(payload, MqttSubscription(topic="t", metric="m"), now_ms=0)
