"""One limit on password attempts per client address, for every door that takes a password.

The token endpoint (``POST /api/v1/auth/token/``), the page login (``/accounts/login/``) and the
Django admin's login (``/admin/login/``) share :class:`LoginRateThrottle`: at most
``QSMREVIEW_LOGIN_RATE`` attempts per client address, right or wrong password, counted in the
default cache (Redis in production, ``CACHE_URL``, so that all web processes count together).
The API answers 429 through DRF (``{"detail", "code": "throttled"}``); pages answer 429 with the
login page and a message. Both send ``Retry-After``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    """At most ``QSMREVIEW_LOGIN_RATE`` password attempts per client address.

    The rate is read at request time (DRF's ``DEFAULT_THROTTLE_RATES`` is frozen at import).
    Works on a DRF request and on a plain Django ``HttpRequest`` alike (it reads only ``META``).
    """

    scope = "login"

    def get_rate(self) -> str:
        return str(settings.QSMREVIEW_LOGIN_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a page login view: a POST past the rate gets 429 without checking the password."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            throttle = LoginRateThrottle()
            if not throttle.allow_request(request, None):
                seconds = max(1, math.ceil(throttle.wait() or 1))
                response = render(
                    request,
                    "registration/login_throttled.html",
                    {"seconds": seconds, "rate": settings.QSMREVIEW_LOGIN_RATE},
                    status=429,
                )
                response["Retry-After"] = str(seconds)
                return response
        return view(request, *args, **kwargs)

    return wrapped
