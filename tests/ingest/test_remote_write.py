"""Remote-write decoding: snappy, the WriteRequest message, NaN and staleness markers."""

from __future__ import annotations

import struct

import cramjam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seismo.errors import InvalidInput, TooLarge
from seismo.ingest.remote_write import decode, decompress, encode

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def test_round_trip_drops_nan_and_staleness_markers() -> None:
    body = encode([({"__name__": "up", "job": "node", "instance": "a:9100"},
                    [(1000, 1.0), (2000, STALE_NAN), (3000, 0.0)]),
                   ({"__name__": "temp"}, [(1000, float("nan"))])])
    decoded = decode(decompress(body, 1 << 20))
    assert [(s.metric, s.labels, s.timestamps, s.values) for s in decoded.series] == [
        ("up", {"job": "node", "instance": "a:9100"}, [1000, 3000], [1.0, 0.0])]
    assert (decoded.samples, decoded.skipped_nan) == (2, 2)


def test_series_without_a_name_is_refused() -> None:
    body = encode([({"__name__": "ok"}, [(1, 1.0)]), ({"job": "x"}, [(1, 1.0)])])
    with pytest.raises(InvalidInput, match="timeseries 1 has no __name__"):
        decode(decompress(body, 1 << 20))


def test_garbage_is_refused() -> None:
    with pytest.raises(InvalidInput, match="snappy"):
        decompress(b"\x05not snappy at all", 1 << 20)
    whole = decompress(encode([({"__name__": "m"}, [(1, 2.0)])]), 1 << 20)
    for garbage in (b"\x0a\xff\xff\xff\x0f", b"\x0a\x05\x0a\x03\x0a", b"\x0b",
                    whole[:-1], whole[:-2] + b"\x13" + whole[-1:]):
        with pytest.raises(InvalidInput, match="protobuf"):
            decode(garbage)


def test_declared_size_over_the_limit_is_too_large() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\0" * 5000))
    with pytest.raises(TooLarge):
        decompress(body, 4096)


LABEL = st.text(min_size=1, max_size=8)


@given(st.lists(st.tuples(
    st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), LABEL, max_size=3),
    st.lists(st.tuples(st.integers(-(2**62), 2**62), st.floats(allow_nan=False)),
             min_size=1, max_size=4)), max_size=5))
def test_round_trip(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> None:
    sent = [({"__name__": "m", **labels}, samples) for labels, samples in series]
    decoded = decode(decompress(encode(sent), 1 << 20))
    assert [(s.labels, list(zip(s.timestamps or [], s.values, strict=True)))
            for s in decoded.series] == [
        ({k: v for k, v in labels.items() if k != "__name__"}, samples)
        for labels, samples in sent]
