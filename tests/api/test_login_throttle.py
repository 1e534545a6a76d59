"""Token login is throttled per client address: password guessing gets 429, then waits."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.fixtures.cast import PASSWORD

pytestmark = pytest.mark.django_db


def login(password: str, address: str = "10.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/token/", {"username": "rater1", "password": password}, format="json"
    )


def test_it_refuses_logins_past_the_rate_from_one_address_even_with_the_right_password(rater, settings):
    settings.QSMREVIEW_LOGIN_RATE = "3/minute"
    assert [login("wrong").status_code for _ in range(3)] == [400, 400, 400]

    refused = login(PASSWORD)

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "throttled" and body["detail"].startswith("Request was throttled.")
    assert 0 < int(refused["Retry-After"]) <= 60
    # Another address still logs in.
    assert login(PASSWORD, address="10.0.0.2").status_code == 200


def test_the_default_rate_allows_a_script_a_few_logins(rater):
    assert all(login(PASSWORD).status_code == 200 for _ in range(10))
    assert login(PASSWORD).status_code == 429
