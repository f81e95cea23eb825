"""Keep token secrets out of logs: a logging filter that masks them in every record.

The access middleware already strips `?token=` from the request before anything logs the
URL; this filter is the second line, on the log handlers, for whatever else might print a
secret (a library's debug line, an exception message).
"""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(
    r"(?P<query>(?<![A-Za-z0-9_])token=)[^&\s\"'#]+"
    r"|(?P<bearer>[Bb]earer\s+)[^\s\"',]+"
    r"|smo_[A-Za-z0-9_-]{8,}"
)
MASK = "<redacted>"


def redact(text: str) -> str:
    """`text` with token secrets masked.

    >>> redact("GET /api/v1/stream?topic=x&token=smo_abcdefgh123 Bearer abc")
    'GET /api/v1/stream?topic=x&token=<redacted> Bearer <redacted>'
    """
    return _SECRET.sub(lambda m: (m.group("query") or m.group("bearer") or "") + MASK, text)


class RedactSecrets(logging.Filter):
    """Mask token secrets in a record's message and traceback; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logging module's problem to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
