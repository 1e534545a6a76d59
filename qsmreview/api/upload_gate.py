"""Permission before body: an upload the caller may not make is refused before its bytes are read.

Django parses a multipart body (streaming each file to ``FILE_UPLOAD_TEMP_DIR``) the first time
anything reads ``request.POST``/``request.FILES`` or DRF's ``request.data``. For a browser
(session) client that is the CSRF check, inside authentication, before any permission check; for
a token client it is the view's first look at ``request.data``. Either way a rater or an outsider
could stream a file up to the upload limit to disk and only then be told 403/404.

A view that takes uploads installs a *gate* on the request (:func:`set_upload_gate`) before DRF
authenticates it. :class:`UploadGateHandler`, the first of ``FILE_UPLOAD_HANDLERS``, calls the gate
in :meth:`~UploadGateHandler.handle_raw_input`, which Django's multipart parser calls before it
reads the first byte of the body; a gate that raises a :class:`~qsmreview.errors.DomainError`
stops the parse there and the API answers with it. The view also calls the gate itself right
after authentication (a token client's body is not read by then either).

The gate sees the authenticated user and the URL (path and query string), not the body: the
target must be in the URL to be checked before the body (``POST /api/v1/series/?session=12``).

Every other route under ``/api/`` takes no files at all: a multipart body there (which a browser's
CSRF check would parse, and DRF's multipart parser would too) is refused at its first file part,
so no API route streams a file to disk for a caller who may not upload.

Outside the API, two pages take files: Django admin's series upload
(``/admin/studies/series/add/``), only from a user who administers a study, and the lesion-table
import page (``/studies/<id>/reports/import/``), only from that study's admins; every other page
takes none. There the parse is stopped at the first file part (:class:`StopUpload`, no byte of
the file read) and the page answers as it would to a form without its file (the CSRF check or
the admin's own permission check refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest
from django.urls import reverse

from qsmreview.errors import ValidationFailed

_GATE_ATTR = "_qsmreview_upload_gate"
#: Requests under this path take files only where the view installed a gate.
API_PREFIX = "/api/"


def set_upload_gate(request: HttpRequest, gate: Callable[[], object]) -> None:
    """Call ``gate()`` before this request's multipart body is read; it raises to refuse (its result is ignored)."""
    setattr(request, _GATE_ATTR, gate)


class UploadGateHandler(FileUploadHandler):
    """Runs the request's upload gate before the body is parsed; otherwise passes data through."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        gate = getattr(self.request, _GATE_ATTR, None) if self.request is not None else None
        if gate is not None:
            gate()  # raises to refuse: no byte of the body has been read yet
        return None  # let the next handlers parse as usual

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        request = self.request
        if request is None or getattr(request, _GATE_ATTR, None) is not None:
            return
        if request.path.startswith(API_PREFIX):  # before a byte of the file is read
            raise ValidationFailed(f"this route takes no file uploads ({field_name!r})", field=field_name)
        if not _may_upload_on_page(request):
            raise StopUpload(connection_reset=True)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _may_upload_on_page(request: HttpRequest) -> bool:
    """Whether a page (not an API route) may receive a file in this request."""
    from qsmreview.access import studies_managed_by

    user = getattr(request, "user", None)
    if user is None or not user.is_active:
        return False
    if request.path == reverse("admin:studies_series_add"):
        return bool(user.is_staff and studies_managed_by(user).exists())
    # The lesion-table import page (qsmreview.reports): the study's admins only.
    from django.urls import Resolver404, resolve

    try:
        match = resolve(request.path)
    except Resolver404:
        return False
    if match.url_name != "study-reports-import":
        return False
    return studies_managed_by(user).filter(pk=match.kwargs.get("study_id")).exists()
