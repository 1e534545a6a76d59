"""Password reset tells the user when the email cannot be sent, and sends it when it can."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", "alice@example.org", "pw-alice-123")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("email", ["alice@example.org", "nobody@example.org"])
def test_it_says_the_mail_cannot_be_sent_when_the_server_is_down(client, settings, alice, email) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2

    response = client.post("/accounts/password_reset/", {"email": email})

    # Same answer whether or not the address has an account: nothing is revealed about it.
    assert response.status_code == 200
    assert b"cannot be sent right now" in response.content
    assert b"ask your study&#x27;s admin" in response.content


def test_it_sends_the_mail_when_the_server_answers(client, settings, alice) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    response = client.post("/accounts/password_reset/", {"email": "alice@example.org"})

    assert response.status_code == 302 and response["Location"].endswith("/accounts/password_reset/done/")
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
