"""Fuzz the JSON API from its own OpenAPI document (schemathesis): no input yields a 5xx,
and every answer matches the schema and content type documented for its status.

Bounded (a few examples per operation) so that it stays well under a minute; run with
``NIGHTWHEELS_FUZZ_EXAMPLES=500`` for a deeper search.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.access import Accounts
from tests.support.oidc import Issuer
from tests.support.server import LiveServer

EXAMPLES = int(os.environ.get("NIGHTWHEELS_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    issuer = Issuer().start()  # so that a JWT-shaped input meets a key set, not a 503
    root = tmp_path_factory.mktemp("fuzz")
    server = LiveServer(
        data=root / "data",
        env={
            "NIGHTWHEELS_OIDC_JWKS_URL": issuer.jwks_url,
            # Fuzzed logins fail by the hundred: keep the throttle out of the way.
            "NIGHTWHEELS_AUTH_FAILURES_PER_MINUTE": "1000000",
        },
    )
    server.data.mkdir()
    server.start()
    people = Accounts(server.data)
    try:
        people.user("root", admin=True, organisation="R")
        people.user("alice", organisation="A", password="a long password")
        people.role("demo", "root", "admin")
        people.role("demo", "alice", "uploader")
        yield server, people.token("root")
    finally:
        people.close()
        server.stop()
        issuer.stop()


def test_no_input_causes_a_server_error(fuzz_server: tuple[LiveServer, str]) -> None:
    """Every operation, with generated valid and invalid inputs, as a site admin."""
    server, token = fuzz_server
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25  # the whole API is described

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=f"{server.url}/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    response_schema_conformance,
                    content_type_conformance,
                ],
                timeout=30,
            )

        fuzz()
