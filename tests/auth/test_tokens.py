"""TokenStore: secrets hashed at rest, unique active names, revoke, a 1 s cache."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from seismo.auth import Role, TokenStore, has_active_tokens
from seismo.errors import InvalidInput, NotFound


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[TokenStore]:
    tokens = TokenStore(tmp_path / "state.db", clock=clock)
    yield tokens
    tokens.close()


def test_the_db_holds_the_hash_never_the_secret(store: TokenStore, tmp_path: Path) -> None:
    record, secret = store.create("ci", "operator")
    assert secret.startswith("smo_") and len(secret) >= 40
    raw = (tmp_path / "state.db").read_bytes() + (tmp_path / "state.db-wal").read_bytes()
    assert secret.encode() not in raw
    con = sqlite3.connect(tmp_path / "state.db")
    [(stored,)] = con.execute("SELECT secret_sha256 FROM tokens").fetchall()
    con.close()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert "secret" not in record.to_dict() and stored not in str(record.to_dict())


def test_authenticate_gives_the_principal(store: TokenStore) -> None:
    record, secret = store.create("grafana", Role.VIEWER, ingest_samples_per_s=50)
    principal = store.authenticate(secret)
    assert principal is not None
    assert (principal.name, principal.role, principal.token_id) == ("grafana", Role.VIEWER,
                                                                     record.id)
    assert principal.ingest_samples_per_s == 50
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("smo_" + "A" * 43) is None
    assert store.authenticate("not-a-token") is None
    assert store.authenticate("smo_" + "A" * 500) is None


def test_two_secrets_differ_and_each_token_gets_its_own(store: TokenStore) -> None:
    _, a = store.create("a", "viewer")
    _, b = store.create("b", "admin")
    assert a != b
    pa, pb = store.authenticate(a), store.authenticate(b)
    assert pa is not None and pb is not None
    assert (pa.name, pb.name, pb.role) == ("a", "b", Role.ADMIN)


def test_names_are_unique_among_active_tokens(store: TokenStore) -> None:
    store.create("ci", "operator")
    with pytest.raises(InvalidInput) as caught:
        store.create("ci", "viewer")
    assert caught.value.field == "name" and "exists" in caught.value.message
    store.revoke("ci")
    record, _ = store.create("ci", "viewer")  # a revoked token's name may be reused
    assert [r.name for r in store.list()] == ["ci", "ci"]
    assert [r.is_active for r in store.list()] == [False, True]
    assert record.role == Role.VIEWER


@pytest.mark.parametrize(("name", "role", "rate", "field"), [
    ("", "viewer", None, "name"),
    ("1ci", "viewer", None, "name"),        # ids are digits; names start with a letter
    ("has space", "viewer", None, "name"),
    ("x" * 65, "viewer", None, "name"),
    (None, "viewer", None, "name"),
    ("ci", "root", None, "role"),
    ("ci", "", None, "role"),
    ("ci", "viewer", -1, "ingest_samples_per_s"),
    ("ci", "viewer", float("inf"), "ingest_samples_per_s"),
    ("ci", "viewer", "10", "ingest_samples_per_s"),
    ("ci", "viewer", True, "ingest_samples_per_s"),
])
def test_bad_input_names_the_field_and_changes_nothing(
    store: TokenStore, name: object, role: object, rate: object, field: str,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.create(name, role, rate)
    assert caught.value.field == field
    assert store.list() == []
    assert not store.has_active()


def test_revoke_by_id_or_name(store: TokenStore) -> None:
    a, secret_a = store.create("a", "viewer")
    b, secret_b = store.create("b", "viewer")
    revoked = store.revoke(str(a.id))
    assert revoked.id == a.id and revoked.revoked_ms is not None
    assert store.revoke("b").id == b.id
    assert store.authenticate(secret_a) is None and store.authenticate(secret_b) is None
    again = store.revoke(a.id)  # revoking twice changes nothing
    assert again.revoked_ms == revoked.revoked_ms


def test_revoke_of_an_unknown_token_is_not_found(store: TokenStore) -> None:
    with pytest.raises(NotFound) as by_id:
        store.revoke(42)
    assert by_id.value.field == "id"
    with pytest.raises(NotFound) as by_name:
        store.revoke("nobody")
    assert by_name.value.field == "name"


def test_another_process_revoking_is_seen_after_the_cache_time(
    store: TokenStore, clock: Clock, tmp_path: Path,
) -> None:
    _, secret = store.create("ci", "operator")
    assert store.authenticate(secret) is not None and store.has_active()
    other = TokenStore(tmp_path / "state.db")  # e.g. `seismo token revoke` while serving
    other.revoke("ci")
    other.close()
    clock.now += 0.5
    assert store.authenticate(secret) is not None  # still cached
    assert store.has_active()
    clock.now += 0.6
    assert store.authenticate(secret) is None
    assert not store.has_active()


def test_a_token_created_elsewhere_is_seen_after_the_cache_time(
    store: TokenStore, clock: Clock, tmp_path: Path,
) -> None:
    assert not store.has_active()
    other = TokenStore(tmp_path / "state.db")
    _, secret = other.create("late", "viewer")
    other.close()
    assert not store.has_active()  # "no token, auth off" is cached…
    clock.now += 1.01              # …for one cache time
    assert store.has_active()
    assert store.authenticate(secret) is not None


def test_last_used_is_recorded(store: TokenStore, clock: Clock) -> None:
    record, secret = store.create("ci", "operator")
    assert record.last_used_ms is None
    store.authenticate(secret)
    [listed] = store.list()
    assert listed.last_used_ms is not None and listed.last_used_ms >= record.created_ms


def test_has_active_tokens_without_a_db(tmp_path: Path) -> None:
    assert not has_active_tokens(tmp_path / "nothing" / "state.db")
    assert not (tmp_path / "nothing").exists()
    store = TokenStore(tmp_path / "state.db")
    store.create("ci", "viewer")
    store.close()
    assert has_active_tokens(tmp_path / "state.db")
