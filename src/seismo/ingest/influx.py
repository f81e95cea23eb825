"""InfluxDB line protocol (`POST /write`, `POST /api/v2/write`) → ingest series.

A line `cpu,host=a usage_idle=97.5,up=true 1700000000000000000` becomes the samples
`cpu_usage_idle{host="a"} 97.5` and `cpu_up{host="a"} 1`: tags are labels, each field is
the metric `<measurement>_<field>` (a field called `value` is just `<measurement>`, as
Telegraf's Prometheus output names it). String fields are skipped and counted. Any
malformed line refuses the whole request (nothing stored); see docs/protocols.md.
Reference: https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from seismo.errors import InvalidInput
from seismo.ingest.schema import SeriesIn

# precision → (multiply, divide) turning a timestamp into epoch milliseconds
PRECISIONS = {
    "ns": (1, 1_000_000), "n": (1, 1_000_000), "us": (1, 1000), "u": (1, 1000),
    "ms": (1, 1), "s": (1000, 1), "m": (60_000, 1), "h": (3_600_000, 1),
}
TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
MAX_LISTED = 100
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_MAX = 1.7976931348623157e308  # the largest finite float


@dataclass
class Parsed:
    """A request's samples grouped by series, ready for `Validator.columnar`."""

    series: list[SeriesIn] = field(default_factory=list)
    samples: int = 0
    skipped_fields: int = 0


class _LineError(Exception):
    pass


_NAMES: dict[tuple[str, bool], str] = {}  # a few thousand distinct names at most, usually
MAX_CACHED_NAMES = 100_000
# Series keys parsed before (agents send the same series every interval); the label
# dicts are shared by the requests and never changed.
_KEYS: dict[str, tuple[str, dict[str, str]]] = {}
MAX_CACHED_KEYS = 200_000


def _sanitise(text: str, is_label: bool) -> str:
    name = _NAMES.get((text, is_label))
    if name is None:
        name = (_INVALID_LABEL if is_label else _INVALID_NAME).sub("_", text)
        name = "_" + name if name[:1].isdigit() or not name else name
        if len(_NAMES) >= MAX_CACHED_NAMES:
            _NAMES.clear()
        _NAMES[(text, is_label)] = name
    return name


def metric_name(text: str) -> str:
    """A Prometheus-valid metric name: other characters become `_`."""
    return _sanitise(text, False)


def label_name(text: str) -> str:
    """A Prometheus-valid label name: other characters become `_`."""
    return _sanitise(text, True)


def parse(body: bytes, *, precision: str = "ns", now_ms: int) -> Parsed:
    """Parse a whole request; raise InvalidInput naming every malformed line (up to 100)."""
    if precision not in PRECISIONS:
        raise InvalidInput(f"unknown precision {precision!r}: use ns, us, ms or s",
                           field="precision")
    multiply, divide = PRECISIONS[precision]
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not UTF-8: {exc.reason} at byte {exc.start}",
                           field="body") from None
    keys = _KEYS
    if len(keys) >= MAX_CACHED_KEYS:
        keys.clear()
    # (series key, field) → (labels, metric, timestamps, values). A bad line may leave
    # samples of its earlier fields here: harmless, any bad line refuses the request.
    groups: dict[tuple[str, str],
                 tuple[dict[str, str], str, list[int], list[float | None]]] = {}
    errors: list[dict[str, object]] = []
    bad = skipped = samples = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line or line[0] == "#":
            continue
        try:
            if "\\" in line or '"' in line:
                key, fields, stamp = _sections(line)
                pairs = _fields_slow(fields)
            else:
                parts = line.split(" ")
                if len(parts) == 2:
                    key, fields, stamp = parts[0], parts[1], ""
                elif len(parts) == 3:
                    key, fields, stamp = parts
                else:
                    raise _LineError("expected `measurement[,tags] fields [timestamp]` "
                                     "separated by single spaces")
                pairs = [_pair(f) for f in fields.split(",")] if "," in fields \
                    else [_pair(fields)]
            if stamp:
                try:
                    ts = int(stamp) * multiply // divide
                except ValueError:
                    stamp = "_"  # reported below
                if "_" in stamp:
                    raise _LineError(f"timestamp {line.rsplit(' ', 1)[-1]!r} is not an "
                                     "integer")
            else:
                ts = now_ms
            for name, raw in pairs:
                last = raw[-1]
                if "0" <= last <= "9" or last == ".":  # the common case: a float
                    try:
                        value: float | None = float(raw)
                    except ValueError:
                        value = None
                    if value is None or "_" in raw or not -_MAX <= value <= _MAX:
                        raise _LineError(f"field {name!r}: {raw!r} is not a finite number")
                else:
                    value = _value(name, raw)
                    if value is None:
                        skipped += 1
                        if key not in keys:  # still check the series key
                            keys[key] = _series_key(key)
                        continue
                group = groups.get((key, name))
                if group is None:
                    found = keys.get(key)
                    if found is None:
                        found = keys[key] = _series_key(key)
                    measurement, labels = found
                    metric = measurement if name == "value" else \
                        metric_name(f"{measurement}_{name}")
                    group = groups[(key, name)] = (labels, metric, [], [])
                group[2].append(ts)
                group[3].append(value)
                samples += 1
        except _LineError as exc:
            bad += 1
            if len(errors) < MAX_LISTED:
                errors.append({"line": number, "reason": str(exc)})
            continue
    if errors:
        first = errors[0]
        raise InvalidInput(
            f"{bad} malformed line(s), nothing stored; line {first['line']}: {first['reason']}",
            field=f"line {first['line']}", errors=errors)
    series = [SeriesIn(metric=metric, values=values, labels=labels, timestamps=stamps)
              for labels, metric, stamps, values in groups.values()]
    return Parsed(series, samples, skipped)


def _pair(text: str) -> tuple[str, str]:
    name, sep, raw = text.partition("=")
    if not sep or not name or not raw:
        raise _LineError(f"field {text!r} is not name=value")
    return name, raw


def _value(name: str, raw: str) -> float | None:
    """A field's value as a float; None for a string field (skipped)."""
    last = raw[-1]
    if last == '"':
        if len(raw) < 2 or raw[0] != '"':
            raise _LineError(f"field {name!r}: unbalanced quotes")
        return None
    if last in "iu":
        digits = raw[:-1]
        if not _INTEGER.match(digits) or (last == "u" and digits[0] == "-"):
            kind = "integer" if last == "i" else "unsigned integer"
            raise _LineError(f"field {name!r}: {raw!r} is not an {kind}")
        return float(int(digits))
    if raw in TRUE:
        return 1.0
    if raw in FALSE:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise _LineError(f"field {name!r}: {raw!r} is not a number, boolean or string") \
            from None
    if "_" in raw or not math.isfinite(value):
        raise _LineError(f"field {name!r}: {raw!r} is not a finite number")
    return value


def _series_key(key: str) -> tuple[str, dict[str, str]]:
    """`measurement,tag=v,...` (escapes allowed) → (measurement, labels)."""
    parts = _split(key, ",") if "\\" in key else key.split(",")
    measurement = _unescape(parts[0])
    if not measurement:
        raise _LineError("measurement name is empty")
    labels: dict[str, str] = {}
    for tag in parts[1:]:
        pieces = _split(tag, "=") if "\\" in tag else tag.split("=")
        if len(pieces) != 2 or not pieces[0] or not pieces[1]:
            raise _LineError(f"tag {tag!r} is not key=value")
        labels[label_name(_unescape(pieces[0]))] = _unescape(pieces[1])
    return metric_name(measurement), labels


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped with a backslash (escapes kept)."""
    out, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == sep:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in ', ="\\':
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _sections(line: str) -> tuple[str, str, str]:
    """Split a line with escapes or quoted strings into series key, fields, timestamp."""
    bounds: list[int] = []
    quoted, i, n = False, 0, len(line)
    in_fields = False
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"' and in_fields:
            quoted = not quoted
        elif c == " " and not quoted:
            bounds.append(i)
            in_fields = len(bounds) == 1
        i += 1
    if quoted:
        raise _LineError("unbalanced quotes in a string field")
    if len(bounds) == 1:
        return line[:bounds[0]], line[bounds[0] + 1:], ""
    if len(bounds) == 2:
        return line[:bounds[0]], line[bounds[0] + 1:bounds[1]], line[bounds[1] + 1:]
    raise _LineError("expected `measurement[,tags] fields [timestamp]` separated by "
                     "single spaces")


def _fields_slow(fields: str) -> list[tuple[str, str]]:
    """Fields split on commas outside quoted strings, names unescaped."""
    pairs, start, quoted, i, n = [], 0, False, 0, len(fields)
    pieces = []
    while i < n:
        c = fields[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            pieces.append(fields[start:i])
            start = i + 1
        i += 1
    pieces.append(fields[start:])
    for piece in pieces:
        parts = _split(piece, "=")
        name = parts[0]
        raw = piece[len(name) + 1:]
        if len(parts) < 2 or not name or not raw:
            raise _LineError(f"field {piece!r} is not name=value")
        pairs.append((_unescape(name), raw))
    return pairs
