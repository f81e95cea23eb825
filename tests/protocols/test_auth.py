"""InfluxDB 2 clients (Telegraf's influxdb_v2 output) send `Authorization: Token <t>`."""

from __future__ import annotations

from seismo.api.access import take_token


def test_token_scheme_is_a_bearer_token() -> None:
    scope = {"headers": [(b"authorization", b"Token s3cret")], "query_string": b""}
    assert take_token(scope) == "s3cret"
    scope = {"headers": [(b"authorization", b"Basic dTpw")], "query_string": b""}
    assert take_token(scope) is None
