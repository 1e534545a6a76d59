"""Password attempts are throttled per client address on every door: token, page and admin login."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.fixtures.cast import PASSWORD

pytestmark = pytest.mark.django_db


def token(password: str, address: str = "10.0.0.1", **headers: str):
    return APIClient(REMOTE_ADDR=address, **headers).post(
        "/api/v1/auth/token/", {"username": "rater1", "password": password}, format="json"
    )


def test_it_refuses_logins_past_the_rate_from_one_address_even_with_the_right_password(rater, settings):
    settings.QSMREVIEW_LOGIN_RATE = "3/minute"
    assert [token("wrong").status_code for _ in range(3)] == [400, 400, 400]

    refused = token(PASSWORD)

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "throttled" and body["detail"].startswith("Request was throttled.")
    assert 0 < int(refused["Retry-After"]) <= 60
    # Another address still logs in.
    assert token(PASSWORD, address="10.0.0.2").status_code == 200


def test_the_default_rate_allows_a_script_a_few_logins(rater):
    assert all(token(PASSWORD).status_code == 200 for _ in range(10))
    assert token(PASSWORD).status_code == 429


def test_a_forged_forwarded_for_header_does_not_reset_the_count(rater, settings):
    settings.QSMREVIEW_LOGIN_RATE = "2/minute"
    codes = [token("wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code for i in range(3)]
    assert codes == [400, 400, 429]


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_login_pages_share_the_limit_with_the_token_endpoint(admin, settings, path: str):
    settings.QSMREVIEW_LOGIN_RATE = "3/minute"
    client = Client(REMOTE_ADDR="10.0.0.9")
    assert token("wrong", address="10.0.0.9").status_code == 400
    assert client.post(path, {"username": "admin", "password": "nope"}).status_code == 200  # form again
    assert client.get(path).status_code == 200  # looking at the page is not an attempt

    assert client.post(path, {"username": "admin", "password": "nope"}).status_code == 200
    refused = client.post(path, {"username": "admin", "password": PASSWORD})

    assert refused.status_code == 429
    assert b"Too many login attempts from your address (the limit is 3/minute)" in refused.content
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "_auth_user_id" not in client.session
