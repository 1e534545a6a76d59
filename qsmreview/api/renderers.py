"""The browsable API (``Accept: text/html`` or ``?format=api``) as a read-only view of the JSON.

DRF's :class:`~rest_framework.renderers.BrowsableAPIRenderer` adds forms built from the view's
serializer: an HTML form whose foreign-key ``<select>`` lists every row of the related model (every
study, subject and session in the database, whoever asks), a raw-data form, and django-filter's
filter form (whose choice filters would list rows too). This renderer draws none of them, so the
page shows exactly what the JSON shows to the same user; writes go through the JSON API (or the
Swagger page, ``/api/docs/``). The OPTIONS and DELETE buttons stay: they carry no data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import renderers

if TYPE_CHECKING:  # rest_framework.views imports the renderers named in settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ReadOnlyBrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API without write forms, raw-data forms or filter forms."""

    def get_rendered_html_form(self, data: Any, view: APIView, method: str, request: Request) -> Any:
        if method in ("DELETE", "OPTIONS"):  # a button, no fields
            return super().get_rendered_html_form(data, view, method, request)
        return None

    def get_raw_data_form(self, data: Any, view: APIView, method: str, request: Request) -> None:
        return None

    def get_filter_form(self, data: Any, view: APIView, request: Request) -> None:
        return None
