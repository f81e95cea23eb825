"""The line protocol parser: names, values, escapes, precisions, and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seismo.errors import InvalidInput
from seismo.ingest.influx import parse


def samples(body: bytes, **kw: object) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                               list[tuple[int, float | None]]]:
    parsed = parse(body, now_ms=42, **kw)  # type: ignore[arg-type]
    out: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float | None]]] = {}
    for s in parsed.series:
        key = (s.metric, tuple(sorted(s.labels.items())))
        out.setdefault(key, []).extend(zip(s.timestamps or [], s.values, strict=True))
    return out


def test_telegraf_cpu_line() -> None:
    body = (b"cpu,cpu=cpu-total,host=web-1 usage_idle=97.5,usage_user=1.25 "
            b"1700000000000000000\n")
    labels = (("cpu", "cpu-total"), ("host", "web-1"))
    assert samples(body) == {
        ("cpu_usage_idle", labels): [(1_700_000_000_000, 97.5)],
        ("cpu_usage_user", labels): [(1_700_000_000_000, 1.25)],
    }


def test_field_named_value_is_the_measurement() -> None:
    assert samples(b"temperature,room=1 value=21.5 1000\n", precision="ms") == {
        ("temperature", (("room", "1"),)): [(1000, 21.5)]}


def test_value_types() -> None:
    got = samples(b"m a=1i,b=2u,c=-3.5e2,d=t,e=FALSE,f=True 5\n", precision="s")
    assert {k[0]: v[0][1] for k, v in got.items()} == {
        "m_a": 1.0, "m_b": 2.0, "m_c": -350.0, "m_d": 1.0, "m_e": 0.0, "m_f": 1.0}
    assert {v[0][0] for v in got.values()} == {5000}


def test_string_fields_are_skipped_and_counted() -> None:
    parsed = parse(b'log,app=x msg="a, b=c \\"quoted\\"",level=3 1\n', now_ms=0)
    assert [(s.metric, s.values) for s in parsed.series] == [("log_level", [3.0])]
    assert parsed.skipped_fields == 1


@pytest.mark.parametrize(("precision", "stamp", "ms"), [
    ("ns", "1700000000123456789", 1_700_000_000_123), ("us", "1700000000123456", 1_700_000_000_123),
    ("ms", "1700000000123", 1_700_000_000_123), ("s", "1700000000", 1_700_000_000_000),
])
def test_precisions(precision: str, stamp: str, ms: int) -> None:
    assert samples(f"m v=1 {stamp}".encode(), precision=precision) == {
        ("m_v", ()): [(ms, 1.0)]}


def test_missing_timestamp_means_now() -> None:
    assert samples(b"m value=1") == {("m", ()): [(42, 1.0)]}


def test_escapes_comments_blank_lines_crlf() -> None:
    body = (b"# a comment\r\n\r\n"
            b"my\\ meas\\,x,tag\\ one=a\\,b\\=c,t2=\\\"q f\\=1=2 7\r\n"
            b"   \n")
    assert samples(body, precision="ms") == {
        ("my_meas_x_f_1", (("t2", '"q'), ("tag_one", "a,b=c"))): [(7, 2.0)]}


def test_names_are_made_prometheus_valid() -> None:
    assert samples(b"disk.io,dev-name=sda read-bytes=5 1", precision="s") == {
        ("disk_io_read_bytes", (("dev_name", "sda"),)): [(1000, 5.0)]}


@pytest.mark.parametrize(("line", "reason"), [
    (b"cpu", "separated by single spaces"),
    (b"cpu,host value=1", "not key=value"),
    (b"cpu value=", "not name=value"),
    (b"cpu value=abc", "is not a number"),
    (b"cpu value=1x", "is not a number"),
    (b"cpu value=nan", "not a finite number"),
    (b"cpu value=1.5i", "not an integer"),
    (b"cpu value=-1u", "not an unsigned integer"),
    (b"cpu value=1 12:00", "not an integer"),
    (b'cpu msg="open 1', "unbalanced quotes"),
    (b",host=a value=1", "measurement name is empty"),
    (b'cpu,host msg="only a string"', "not key=value"),
    (b"cpu value=1 1_000", "not an integer"),
    (b"cpu value=1e999", "not a finite number"),
    (b"cpu value=1 1 2", "separated by single spaces"),
])
def test_malformed_lines_refuse_the_request(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(b"ok value=1\n" + line + b"\n", now_ms=0)
    error = caught.value.to_dict()
    assert error["field"] == "line 2"
    assert reason in error["errors"][0]["reason"]
    assert "nothing stored" in error["error"]


def test_bad_precision_and_encoding() -> None:
    with pytest.raises(InvalidInput, match="precision"):
        parse(b"m value=1", precision="d", now_ms=0)
    with pytest.raises(InvalidInput, match="UTF-8"):
        parse(b"m value=1 \xff", now_ms=0)


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\t\\"), min_size=1,
               max_size=10).filter(lambda s: s.strip() == s)


def escape(text: str, special: str) -> str:
    return "".join("\\" + c if c in special else c for c in text)


@given(NAMES, st.dictionaries(NAMES, TEXT, max_size=4), st.floats(allow_nan=False,
                                                                    allow_infinity=False),
       st.integers(0, 2**53))
def test_round_trip(measurement: str, tags: dict[str, str], value: float, ts: int) -> None:
    key = ",".join([measurement, *(f"{k}={escape(v, ', =')}" for k, v in tags.items())])
    got = samples(f"{key} value={value!r} {ts}".encode(), precision="ms")
    assert got == {(measurement, tuple(sorted(tags.items()))): [(ts, value)]}
