"""Token login for scripts: POST a username and password, get the token to send as
``Authorization: Token <key>``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from qsmreview.login_throttle import LoginRateThrottle
from qsmreview.studies.api.serializers import ErrorSerializer


class TokenObtainApi(ObtainAuthToken):
    """Returns the user's API token, creating it on first use (the same token until revoked)."""

    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Get an API token with a username and password",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: ErrorSerializer,
            429: ErrorSerializer,
        },
        auth=[],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)
