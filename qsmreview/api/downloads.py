"""What every file download route shares: ETag matching, the If-None-Match parameter in the
schema, and JSON errors whatever the client's ``Accept`` asks for."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request


def etag_matches(header: str | None, tag: str) -> bool:
    """Does an ``If-None-Match`` header name ``tag`` (quoted or weak forms, a list, or ``*``)?"""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return tag in [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]


def if_none_match_parameter(example: str) -> OpenApiParameter:
    """The schema's ``If-None-Match`` header parameter, with an example ETag."""
    return OpenApiParameter(
        "If-None-Match",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=False,
        description=f'an ETag from an earlier download, e.g. "{example}"',
    )


class JsonErrorsForDownloads:
    """A client asking for a file (``Accept: application/gzip``) still gets JSON errors."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)  # type: ignore[misc]
