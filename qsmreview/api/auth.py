"""Token login for scripts: POST a username and password, get the token to send as
``Authorization: Token <key>``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response


class TokenObtainApi(ObtainAuthToken):
    """Returns the user's API token, creating it on first use (the same token until revoked)."""

    @extend_schema(
        tags=["auth"],
        summary="Get an API token with a username and password",
        request=AuthTokenSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
        auth=[],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)
