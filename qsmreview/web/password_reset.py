"""Password reset that says so when the email cannot be sent.

Django's form logs a failed delivery and reports success anyway, so a user waits for a mail that
never comes. Here the mail server is reached first, before any account is looked up (so the answer
does not tell whether an address has an account), and a failure is shown on the form.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMultiAlternatives, get_connection
from django.http import HttpResponse
from django.template import loader

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "The password reset email cannot be sent right now (the mail server did not answer). "
    "Try again later, or ask your study's admin to reset your password."
)


class MailUnavailable(Exception):
    """The mail server could not be reached or refused the message."""


class DeliveredPasswordResetForm(PasswordResetForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except Exception as exc:  # any backend's connection error (OSError, SMTPException, ...)
            log.warning("password reset: mail server unreachable: %s", exc)
            raise forms.ValidationError(UNAVAILABLE, code="mail_unavailable") from exc
        finally:
            connection.close()
        return cleaned

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # Django's version logs a failed delivery and carries on; ours lets the view show it.
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        if html_email_template_name is not None:
            message.attach_alternative(loader.render_to_string(html_email_template_name, context), "text/html")
        try:
            message.send()
        except Exception as exc:
            log.warning("password reset: mail to user %s not delivered: %s", context["user"].pk, exc)
            raise MailUnavailable(str(exc)) from exc


class PasswordResetView(auth_views.PasswordResetView):
    form_class = DeliveredPasswordResetForm

    def form_valid(self, form: DeliveredPasswordResetForm) -> HttpResponse:
        try:
            return super().form_valid(form)
        except MailUnavailable:
            form.add_error(None, UNAVAILABLE)
            return self.form_invalid(form)
