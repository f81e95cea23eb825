"""API tokens: random bearer secrets, kept only as SHA-256 hashes in the state db.

The CLI and the admin API write the `tokens` table; the server reads it on each request
through a cache of `cache_s` (1 s), so a token created or revoked by another process
takes effect within about a second, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seismo.auth.roles import Principal, Role
from seismo.errors import InvalidInput, NotFound
from seismo.store.events import open_state_db

log = logging.getLogger(__name__)

SECRET_PREFIX = "smo_"
MAX_SECRET_CHARS = 128
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.@-]{0,63}$")
CACHE_ENTRIES = 4096  # past it the cache starts over; a miss costs one indexed SELECT
TOUCH_EVERY_MS = 60_000  # `last_used_ms` is written at most this often per token

_COLUMNS = "id, name, role, created_ms, last_used_ms, revoked_ms, ingest_samples_per_s"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def hash_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex (the secret has 256 random bits)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    """A token as listed: everything but its secret (which is never stored)."""

    id: int
    name: str
    role: Role
    created_ms: int
    last_used_ms: int | None = None
    revoked_ms: int | None = None
    ingest_samples_per_s: float | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_ms is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": str(self.role),
                "created_ms": self.created_ms, "last_used_ms": self.last_used_ms,
                "revoked_ms": self.revoked_ms, "active": self.is_active,
                "ingest_samples_per_s": self.ingest_samples_per_s}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"name {name!r} is invalid: 1-64 characters, a letter first, then letters, "
            "digits, '_', '.', '@' or '-'", field="name")
    return name


def check_rate(rate: object) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) \
            or rate < 0:
        raise InvalidInput(
            f"ingest_samples_per_s must be a finite number >= 0 (0: no limit), not {rate!r}",
            field="ingest_samples_per_s")
    return float(rate)


class TokenStore:
    """Create, list, revoke and check tokens in the SQLite state db."""

    def __init__(self, path: Path, *, cache_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = _wall_ms) -> None:
        self.cache_s = cache_s
        self.clock = clock
        self.wall_ms = wall_ms
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._active: tuple[float, bool] | None = None
        self._con = open_state_db(path)
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, role TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL,
                last_used_ms INTEGER, revoked_ms INTEGER, ingest_samples_per_s REAL)"""
        )
        # Names are unique among active tokens; a revoked token's name may be reused.
        self._con.execute("CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name "
                          "ON tokens (name) WHERE revoked_ms IS NULL")

    # -- admin --------------------------------------------------------------------------

    def create(self, name: object, role: object,
               ingest_samples_per_s: object = None) -> tuple[TokenRecord, str]:
        """A new token and its secret; the secret is not kept and cannot be shown again."""
        name = check_name(name)
        role = role if isinstance(role, Role) else Role.parse(role)
        rate = check_rate(ingest_samples_per_s)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        created = self.wall_ms()
        with self._lock:
            try:
                cur = self._con.execute(
                    "INSERT INTO tokens (name, role, secret_sha256, created_ms, "
                    "ingest_samples_per_s) VALUES (?, ?, ?, ?, ?)",
                    (name, str(role), hash_secret(secret), created, rate))
            except sqlite3.IntegrityError:
                raise InvalidInput(
                    f"an active token named {name!r} exists; revoke it or pick another name",
                    field="name") from None
            self._forget()
        assert cur.lastrowid is not None
        record = TokenRecord(cur.lastrowid, name, role, created, ingest_samples_per_s=rate)
        log.info("token %d %r (%s) created", record.id, name, role)
        return record, secret

    def list(self) -> list[TokenRecord]:
        """Every token, revoked ones too, oldest first."""
        with self._lock:
            rows = self._con.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY id").fetchall()
        return [_record(row) for row in rows]

    def get(self, token_id: int) -> TokenRecord:
        with self._lock:
            row = self._con.execute(f"SELECT {_COLUMNS} FROM tokens WHERE id = ?",
                                    (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no token with id {token_id}", field="id")
        return _record(row)

    def revoke(self, ref: int | str) -> TokenRecord:
        """Revoke a token by id, or by name among active tokens; revoking twice is a no-op."""
        if isinstance(ref, int) or ref.strip().isdigit():
            record = self.get(int(ref))
        else:
            with self._lock:
                row = self._con.execute(
                    f"SELECT {_COLUMNS} FROM tokens WHERE name = ? AND revoked_ms IS NULL",
                    (ref,)).fetchone()
            if row is None:
                raise NotFound(f"no active token named {ref!r}", field="name")
            record = _record(row)
        if not record.is_active:
            return record
        revoked = self.wall_ms()
        with self._lock:
            self._con.execute("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND "
                              "revoked_ms IS NULL", (revoked, record.id))
            self._forget()
        log.info("token %d %r revoked", record.id, record.name)
        return TokenRecord(record.id, record.name, record.role, record.created_ms,
                           record.last_used_ms, revoked, record.ingest_samples_per_s)

    # -- per request --------------------------------------------------------------------

    def has_active(self) -> bool:
        """Whether any token is active (then auth is on); at most `cache_s` old."""
        now = self.clock()
        with self._lock:
            if self._active is not None and self._active[0] > now:
                return self._active[1]
            row = self._con.execute(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE revoked_ms IS NULL)").fetchone()
            active = bool(row[0])
            self._active = (now + self.cache_s, active)
        return active

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of an active token with this secret, or None; at most `cache_s` old."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_CHARS:
            return None
        digest = hash_secret(secret)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                return hit[1]
            row = self._con.execute(
                "SELECT id, name, role, last_used_ms, ingest_samples_per_s FROM tokens "
                "WHERE secret_sha256 = ? AND revoked_ms IS NULL", (digest,)).fetchone()
            principal = None
            if row is not None:
                token_id, name, role, last_used, rate = row
                principal = Principal(name, Role[role.upper()], token_id, rate)
                self._touch(token_id, last_used)
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_s, principal)
        return principal

    def _touch(self, token_id: int, last_used_ms: int | None) -> None:
        at = self.wall_ms()
        if last_used_ms is not None and at - last_used_ms < TOUCH_EVERY_MS:
            return
        try:
            self._con.execute("UPDATE tokens SET last_used_ms = ? WHERE id = ?", (at, token_id))
        except sqlite3.Error as exc:  # a busy db must not fail the request
            log.warning("cannot record the use of token %d: %s", token_id, exc)

    def _forget(self) -> None:
        self._cache.clear()
        self._active = None

    def close(self) -> None:
        with self._lock:
            self._con.close()


def _record(row: tuple[Any, ...]) -> TokenRecord:
    token_id, name, role, created, last_used, revoked, rate = row
    return TokenRecord(token_id, name, Role[role.upper()], created, last_used, revoked, rate)


def has_active_tokens(path: Path) -> bool:
    """Whether the state db at `path` holds an active token (False when it does not exist)."""
    if not path.exists():
        return False
    store = TokenStore(path)
    try:
        return store.has_active()
    finally:
        store.close()
