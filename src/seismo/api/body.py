"""Reading request bodies under a size limit, with gzip, before any decoding."""

from __future__ import annotations

import zlib

from fastapi import Request

from seismo.errors import InvalidInput, TooLarge


async def read_body(request: Request, max_bytes: int,
                    raw_encodings: tuple[str, ...] = ()) -> bytes:
    """The (decompressed) body, or TooLarge past `max_bytes` either way. A body in one of
    `raw_encodings` (remote-write's `snappy`) is returned as sent, for the caller to decode."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"body of {declared} bytes is over the limit of {max_bytes}",
                       field="body", limit=max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"body is over the limit of {max_bytes} bytes", field="body",
                           limit=max_bytes)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding in ("", "identity") or encoding in raw_encodings:
        return body
    if encoding != "gzip":
        raise InvalidInput(f"unsupported Content-Encoding {encoding!r}; use gzip",
                           field="Content-Encoding")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidInput(f"body is not valid gzip: {exc}", field="body") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body is over the limit of {max_bytes} bytes",
                       field="body", limit=max_bytes)
    if not inflater.eof:
        raise InvalidInput("body is truncated gzip", field="body")
    return out
