"""The outbound policy on its own: defaults, allow over deny, settings validation."""

from __future__ import annotations

import pytest

from seismo.config import load_settings
from seismo.errors import ConfigError
from seismo.outbound import OutboundPolicy, OutboundRefused


@pytest.mark.parametrize(("address", "refused"), [
    ("169.254.169.254", True), ("169.254.1.1", True), ("fe80::1%eth0", True),
    ("fd00:ec2::254", True), ("::ffff:169.254.169.254", True),
    ("127.0.0.1", False), ("::1", False), ("10.0.0.5", False), ("192.168.1.2", False),
    ("172.16.0.1", False), ("fd12::1", False), ("93.184.215.14", False)])
def test_defaults_refuse_link_local_and_metadata_only(address: str, refused: bool) -> None:
    assert (OutboundPolicy().refusal(address) is not None) == refused


def test_allow_wins_over_deny() -> None:
    policy = OutboundPolicy.of(deny=["10.0.0.0/8"], allow=["10.1.2.3", "169.254.169.254/32"])
    assert policy.refusal("10.9.9.9") == "10.9.9.9 is denied (10.0.0.0/8 in " \
                                          "security.outbound_deny)"
    assert policy.refusal("10.1.2.3") is None
    assert policy.refusal("169.254.169.254") is None
    assert policy.refusal("169.254.169.253") is not None


def test_metadata_names_are_refused_before_any_lookup() -> None:
    with pytest.raises(OutboundRefused, match="cloud metadata host"):
        OutboundPolicy.of(allow=["0.0.0.0/0"]).resolve("METADATA.google.internal", 80)


def test_settings_check_the_networks() -> None:
    settings = load_settings(None, {"security": {"outbound_deny": ["10.0.0.0/8"],
                                                 "outbound_allow": ["fe80::1"]}}, environ={})
    assert settings.security.outbound_deny == ["10.0.0.0/8"]
    with pytest.raises(ConfigError, match=r"10\.0\.0\.300/8"):
        load_settings(None, {"security": {"outbound_deny": ["10.0.0.300/8"]}}, environ={})
