"""Streaming uploads to disk with a size limit.

Every uploaded file is streamed to a temporary file (``FILE_UPLOAD_MAX_MEMORY_SIZE = 0``), never
held in memory. :class:`LimitedTemporaryFileUploadHandler` stops a file as soon as it passes
``settings.QSMREVIEW_MAX_UPLOAD_BYTES``, deletes the partial temporary file and raises
:class:`UploadTooLarge`:

- in the REST API (DRF) it reaches the one exception handler as a
  :class:`~qsmreview.errors.TooLarge` domain error: HTTP 413 ``{"detail": ..., "code": "too_large"}``;
- in plain Django views (the admin) it is a ``RequestDataTooBig``, which Django answers with 400;
  :class:`UploadTooLargeMiddleware` (optional, before ``CsrfViewMiddleware``) turns that answer
  into a 413 page that says which file was too large and what the limit is.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape

from qsmreview.errors import TooLarge

_REQUEST_ATTR = "_qsmreview_upload_error"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


class UploadTooLarge(TooLarge, RequestDataTooBig):
    """An uploaded file passed ``QSMREVIEW_MAX_UPLOAD_BYTES``."""

    def __init__(self, message: str):
        TooLarge.__init__(self, message, field="file")


def max_upload_bytes() -> int:
    return int(settings.QSMREVIEW_MAX_UPLOAD_BYTES)


def too_large_message(file_name: str, limit: int) -> str:
    return (
        f"file {file_name!r} is larger than the upload limit of {human_bytes(limit)} "
        f"({limit} bytes, QSMREVIEW_MAX_UPLOAD_BYTES)"
    )


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """A :class:`TemporaryFileUploadHandler` that aborts a file larger than the upload limit."""

    def new_file(  # type: ignore[override]
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict | None = None,
    ) -> None:
        self._limit = max_upload_bytes()
        self._received = 0
        if content_length is not None and int(content_length) > self._limit:
            self._abort(file_name, remove_partial=False)
        super().new_file(
            field_name, file_name, content_type, content_length, charset, content_type_extra
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:  # type: ignore[override]
        self._received += len(raw_data)
        if self._received > self._limit:
            self._abort(self.file_name, remove_partial=True)
        return super().receive_data_chunk(raw_data, start)

    def _abort(self, file_name: str | None, *, remove_partial: bool) -> None:
        if remove_partial:
            self.upload_interrupted()  # closes and removes this file's partial temporary file
        error = UploadTooLarge(too_large_message(file_name or "upload", self._limit))
        if self.request is not None:
            setattr(self.request, _REQUEST_ATTR, error)
        raise error


def upload_error(request: HttpRequest) -> UploadTooLarge | None:
    """The size-limit error raised while this request's body was parsed, if any."""
    return getattr(request, _REQUEST_ATTR, None)


class UploadTooLargeMiddleware:
    """Answer 413 with the handler's message when an upload was refused for its size.

    Django turns the handler's ``RequestDataTooBig`` into a bare 400 wherever the body is first
    parsed (often the CSRF middleware). Place this middleware before ``CsrfViewMiddleware``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = upload_error(request)
        if error is not None and response.status_code == 400:
            return too_large_response(error)
        return response


def too_large_response(error: UploadTooLarge) -> HttpResponse:
    """A small 413 page saying which file was too large and what the limit is."""
    return HttpResponse(
        "<!doctype html><title>Upload too large</title><h1>Upload too large (413)</h1>"
        f"<p>{escape(error.message)}</p><p>Nothing was stored.</p>",
        status=413,
    )


@contextmanager
def uploaded_file_path(upload: UploadedFile) -> Iterator[Path]:
    """A local path holding the upload: its streamed temporary file, or a temporary copy."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(prefix="qsmreview-upload-") as tmp:
        upload.seek(0)
        shutil.copyfileobj(upload, tmp)
        tmp.flush()
        yield Path(tmp.name)
