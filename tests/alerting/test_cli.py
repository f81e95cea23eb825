"""`seismo alerts` and `seismo silence` against the session's real server."""

from __future__ import annotations

from tests.server import ServerProcess
from tests.test_cli import seismo


def test_raise_list_ack_resolve(server: ServerProcess) -> None:
    raised = seismo("alerts", "raise", "CliDiskFull", "-l", "host=cli-1", "--summary",
                    "disk 99%", "--severity", "critical", "--url", server.url)
    assert raised.returncode == 0, raised.stderr
    alert_id, state = raised.stdout.split()
    assert state == "firing"
    listed = seismo("alerts", "list", "--rule", "CliDiskFull", "--url", server.url)
    assert alert_id in listed.stdout and "host=cli-1" in listed.stdout, listed.stdout
    acked = seismo("alerts", "ack", alert_id, "-m", "on it", "--url", server.url)
    assert acked.returncode == 0 and "acknowledged by anonymous" in acked.stdout
    twice = seismo("alerts", "ack", alert_id, "--url", server.url)
    assert twice.returncode == 1 and twice.stderr.startswith("error: HTTP 400")
    done = seismo("alerts", "resolve", alert_id, "--url", server.url)
    assert done.returncode == 0 and "resolved by anonymous" in done.stdout
    unknown = seismo("alerts", "resolve", "0000000000000000", "--url", server.url)
    assert unknown.returncode == 1 and "404" in unknown.stderr


def test_silence_add_list_expire(server: ServerProcess) -> None:
    added = seismo("silence", "add", "-m", "alertname=CliNoisy", "-m", "host=~web.*",
                   "--duration", "30m", "--comment", "load test", "--url", server.url)
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    listed = seismo("silence", "list", "--state", "active", "--url", server.url)
    assert silence_id in listed.stdout and "host=~web.*" in listed.stdout, listed.stdout
    expired = seismo("silence", "expire", silence_id, "--url", server.url)
    assert expired.returncode == 0 and expired.stdout.strip().endswith("expired")
    bad = seismo("silence", "add", "-m", "alertname=~.*", "--url", server.url)
    assert bad.returncode == 1 and "would mute every alert" in bad.stderr
