"""Fuzzing the API from its own OpenAPI schema (schemathesis): no request gives a server error.

Every operation of ``/api/schema/`` is called with generated data, valid and invalid (ids out of
range, wrong types, missing fields), once with a study admin's token and once with a rater's,
against the in-process WSGI application and the test database. The only check is
``not_a_server_error``: a refusal must be a 4xx in the error contract, never a 500.

Bounded for CI: ``QSMREVIEW_FUZZ_EXAMPLES`` generated examples per operation and role (default 8)
plus schemathesis's boundary cases, derandomized. A long run with fresh examples:
``QSMREVIEW_FUZZ_EXAMPLES=300 QSMREVIEW_FUZZ_RANDOM=1 pytest tests/api/test_fuzz.py`` (docs/api.md).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.api.world import World

EXAMPLES = int(os.environ.get("QSMREVIEW_FUZZ_EXAMPLES", "8"))


@schemathesis.serializer("application/zip")
def _zip_body(ctx, value) -> bytes:
    """The BIDS import takes a raw zip: send whatever was generated as bytes (rarely a real zip)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture
def api_schema(world: World):
    # Django's test client keeps the test's database connection open across requests; the bare
    # WSGI handler would close it at the end of each (as a server does between requests).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The same cases on every run (a failure in CI reproduces locally) unless asked for fresh ones.
    derandomize=os.environ.get("QSMREVIEW_FUZZ_RANDOM") != "1",
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def call_as(case, world: World, role: str) -> None:
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=world.users[role])
    case.call_and_validate(
        headers={"Authorization": f"Token {token.key}"}, checks=[not_a_server_error]
    )


@schema.parametrize()
@_SETTINGS
def test_it_gives_a_study_admin_no_server_error(case, world: World):
    call_as(case, world, "admin")


@schema.parametrize()
@_SETTINGS
def test_it_gives_a_rater_no_server_error(case, world: World):
    call_as(case, world, "rater")
