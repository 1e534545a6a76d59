"""The error answers every API view documents in the OpenAPI schema (one error contract:
``{"detail", "code", "field"?}`` from :mod:`qsmreview.api.errors`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from qsmreview.studies.api.serializers import ErrorSerializer

#: A write: bad input, not signed in, not allowed, not visible.
ERRORS = {
    400: ErrorSerializer,
    401: OpenApiResponse(description="not authenticated"),
    403: ErrorSerializer,
    404: ErrorSerializer,
}
#: A read: not signed in, not visible.
READ_ERRORS = {401: ERRORS[401], 404: ErrorSerializer}
#: A write that can collide with another (a stale parent, a job already queued).
WRITE_ERRORS = {**ERRORS, 409: ErrorSerializer}
