"""One error contract: every refused request answers ``{"detail", "code"[, "field"][, "errors"]}``.

Services raise :class:`~qsmreview.errors.DomainError`; DRF raises its own exceptions for what it
checks before a service runs (authentication, the input serializers' type checks, a page past the
end). Both leave here in one shape, so a script reads ``detail`` and ``code`` whatever refused it:

- ``detail``: what went wrong, in words a user can act on;
- ``code``: ``invalid``, ``forbidden``, ``not_found``, ``conflict``, ``too_large``, or DRF's own
  code for what has no domain equivalent (``not_authenticated``, ``authentication_failed``,
  ``method_not_allowed``, ``unsupported_media_type``, ...);
- ``field``: the input at fault, when there is one;
- ``errors``: for input checks, every message per field (DRF's per-field shape), not only the first;
- and any facts the error carries for a script (a save conflict's ``latest_revision`` and
  ``conflict_revision``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found as django_page_not_found
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from qsmreview.errors import DomainError

#: DRF codes that name the same thing as one of ours.
_SAME_AS_OURS = {"permission_denied": "forbidden", "parse_error": "invalid"}


def _first_message(errors: Any, path: str = "") -> tuple[str, str]:
    """The first (field path, message) in DRF's nested error structure."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = str(key) if not path else f"{path}.{key}"
            return _first_message(value, name)
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, (dict, list)):
            return _first_message(first, f"{path}[0]" if path else "0")
        return path, str(first)
    return path, str(errors)


def _validation_body(data: Any) -> dict[str, Any]:
    field, message = _first_message(data)
    if field in ("", api_settings.NON_FIELD_ERRORS_KEY):
        return {"detail": message, "code": "invalid", "errors": data}
    return {"detail": f"{field}: {message}", "code": "invalid", "field": field, "errors": data}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
        body.update({k: v for k, v in exc.extra.items() if k not in body})
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(response.data)
    else:
        code = exc.detail.code if isinstance(exc.detail, exceptions.ErrorDetail) else exc.default_code
        response.data = {"detail": str(exc.detail), "code": _SAME_AS_OURS.get(str(code), str(code))}
    return response


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for a URL no pattern matches (e.g. ``/api/v1/series/abc/``): JSON under /api/.

    A path id that is not an id (:class:`qsmreview.api.ids.IdConverter`) lands here too, so a
    script gets the same ``{"detail", "code"}`` as for an object it may not see.
    """
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "no such resource", "code": "not_found"}, status=404)
    return django_page_not_found(request, exception)
