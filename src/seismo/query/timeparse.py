"""Times and steps in query parameters: epoch ms, `now`, `now-1h`, or durations like `1m`."""

from __future__ import annotations

from seismo.config import parse_duration_s
from seismo.errors import InvalidInput


def parse_time_ms(text: str | int | None, *, now_ms: int, default: int, field: str) -> int:
    """Epoch milliseconds from `1700000000000`, `now` or `now-15m`.

    >>> parse_time_ms("now-1m", now_ms=120_000, default=0, field="start")
    60000
    """
    if text is None or text == "":
        return default
    if isinstance(text, int):
        return text
    text = text.strip()
    if text == "now":
        return now_ms
    if text.startswith("now-"):
        try:
            return now_ms - int(parse_duration_s(text[4:]) * 1000)
        except ValueError as exc:
            raise InvalidInput(f"bad time {text!r}: {exc}", field=field) from None
    try:
        return int(float(text))
    except ValueError:
        raise InvalidInput(
            f"bad time {text!r}: use epoch milliseconds, 'now' or 'now-<duration>'", field=field
        ) from None


def parse_step_ms(text: str | None, *, field: str = "step") -> int | None:
    """Milliseconds of a step such as `60`, `1m` or `250ms`; None when not given."""
    if text is None or text == "":
        return None
    try:
        step_ms = int(parse_duration_s(text) * 1000)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    if step_ms <= 0:
        raise InvalidInput("step must be positive", field=field)
    return step_ms


def parse_window_s(text: str, *, field: str = "window") -> float:
    """Seconds of a positive window such as `5m`."""
    try:
        window_s = parse_duration_s(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    if window_s <= 0:
        raise InvalidInput("window must be positive", field=field)
    return window_s


def time_bounds(start: str | None, end: str | None, now_ms: int) -> dict[str, int | None]:
    """`start_ms`/`end_ms` filters; an absent one is no bound."""
    return {
        "start_ms": None if start is None else parse_time_ms(start, now_ms=now_ms, default=0,
                                                             field="start"),
        "end_ms": None if end is None else parse_time_ms(end, now_ms=now_ms, default=now_ms,
                                                         field="end"),
    }
