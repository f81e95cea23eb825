"""schemathesis against the whole OpenAPI document of a real server: every operation,
without a token and with an admin one, valid and invalid requests. No 5xx ever, and
every documented response matches its schema and content type."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.auth.helpers import bearer, make_tokens
from tests.fuzz.strategies import LONG_RUN_EXAMPLES
from tests.server import ServerProcess

# Undocumented statuses (401, 403, 413, 429) are fine: access control and limits apply
# to every route and are described once, in docs/security.md and docs/api.md.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = LONG_RUN_EXAMPLES or 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data = tmp_path_factory.mktemp("openapi") / "data"
    secrets = make_tokens(data)
    srv = ServerProcess(data, "--no-collector").start()
    try:
        yield srv.url, secrets
    finally:
        srv.stop()


def fuzz_every_operation(url: str, token: str | None, mode: GenerationMode) -> list[str]:
    """Run each operation's cases; the failures, one line of operation and report each."""
    document = httpx.get(f"{url}/openapi.json", headers=bearer(token)).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(max_examples=EXAMPLES, derandomize=not LONG_RUN_EXAMPLES, deadline=None,
                      database=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(mode))
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=url, session=session, headers=bearer(token),
                                       checks=CHECKS)

            try:
                call()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


@pytest.mark.parametrize(("caller", "mode"), [
    (None, GenerationMode.POSITIVE),
    ("admin", GenerationMode.POSITIVE),
    ("admin", GenerationMode.NEGATIVE),
])
def test_every_operation_answers_without_5xx_and_as_documented(
        server: tuple[str, dict[str, str]], caller: str | None, mode: GenerationMode) -> None:
    url, secrets = server
    failures = fuzz_every_operation(url, None if caller is None else secrets[caller], mode)
    assert not failures, "\n\n".join(failures)
