"""Roles are ordered viewer < operator < admin and parsed from their names only."""

from __future__ import annotations

import pytest

from seismo.auth import ANONYMOUS, Principal, Role
from seismo.errors import InvalidInput


def test_roles_are_ordered() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert [str(role) for role in Role] == ["viewer", "operator", "admin"]


@pytest.mark.parametrize("text", ["viewer", "Operator", " admin "])
def test_parse_a_role_by_name(text: str) -> None:
    assert str(Role.parse(text)) == text.strip().lower()


@pytest.mark.parametrize("text", ["root", "", "1", 2, None, "VIEWER2"])
def test_parse_refuses_anything_else_naming_the_field(text: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        Role.parse(text)
    assert caught.value.field == "role"
    assert "viewer, operator, admin" in caught.value.message


def test_a_principal_may_do_what_its_role_and_the_ones_below_may() -> None:
    operator = Principal("ci", Role.OPERATOR, token_id=1)
    assert operator.may(Role.VIEWER) and operator.may(Role.OPERATOR)
    assert not operator.may(Role.ADMIN)
    assert ANONYMOUS.may(Role.ADMIN) and ANONYMOUS.token_id is None
