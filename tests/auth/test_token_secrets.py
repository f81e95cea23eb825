"""A token's secret is stored only as its SHA-256 and never compared with another secret.

The server looks a presented secret up by its hash (cache dict, then the unique index of
the `tokens` table): how long that takes depends on the hash, which tells an attacker
nothing about a stored secret. These tests pin the parts that make that true.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path

from seismo.auth import TokenStore
from seismo.auth import tokens as tokens_module


def test_the_secret_is_stored_only_as_its_sha256(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "state.db")
    try:
        record, secret = store.create("ci", "operator")
        assert store.authenticate(secret) is not None
        assert record.to_dict().keys().isdisjoint({"secret", "secret_sha256"})
        # The cache is keyed by the hash too: no secret stays in the server's memory.
        assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in store._cache)
        assert secret not in repr(vars(store))
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state"))
    assert secret.encode() not in raw
    assert secret.removeprefix("smo_").encode() not in raw
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw


def test_a_near_miss_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "state.db")
    try:
        _, secret = store.create("ci", "viewer")
        flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        for wrong in (flipped, secret[:-1], secret + "x", secret.upper(), " " + secret,
                      secret.removeprefix("smo_"), "smo_" + "x" * 200):
            assert store.authenticate(wrong) is None, wrong
        assert store.authenticate(secret) is not None
    finally:
        store.close()


def test_authenticate_compares_hashes_not_secrets() -> None:
    """A regression guard: the lookup hashes first and never tests a secret with `==`."""
    source = inspect.getsource(tokens_module.TokenStore.authenticate)
    assert "digest = hash_secret(secret)" in source
    assert not re.search(r"secret\s*[!=]=|[!=]=\s*secret", source), source
