"""``POST /api/v1/studies/<id>/bids-import/``: a BIDS dataset as a zip, imported like ``import_bids``.

The body is the zip itself (``Content-Type: application/zip``), not a multipart form, so the
caller's rights are checked before a byte of it is read (a multipart body would be parsed by the
CSRF check of a session-authenticated request first). The zip is streamed to a temporary file
with the upload size limit, checked as a whole before anything is unpacked, unpacked member by
member into a temporary folder while the bytes actually written are counted, and handed to
:func:`qsmreview.studies.bids.import_bids`, the code behind ``manage.py import_bids``. The
temporary files are removed whatever happens.

Refused with a message, nothing stored: a body over ``QSMREVIEW_MAX_UPLOAD_BYTES`` (413), a file
that is not a zip, members with absolute paths, ``..``, drive letters or backslashes (zip slip),
symbolic links, encrypted members, more than :data:`MAX_MEMBERS` members, more than
:data:`MAX_UNPACKED_FACTOR` times the upload limit unpacked, or a member packed more tightly than
:data:`MAX_RATIO` to 1 (a zip bomb) — declared or found while unpacking.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.api.permissions import get_visible_or_404, require_study_admin
from qsmreview.errors import ValidationFailed
from qsmreview.studies.api import serializers as s
from qsmreview.studies.api import views
from qsmreview.studies.bids import ImportReport, import_bids
from qsmreview.access import studies_visible_to
from qsmreview.studies.uploads import UploadTooLarge, human_bytes, max_upload_bytes, too_large_message

#: At most this many members (files and folders) in one zip.
MAX_MEMBERS = 5000
#: The unpacked dataset may be at most this many times the upload limit.
MAX_UNPACKED_FACTOR = 4
#: A member larger than RATIO_FLOOR_BYTES unpacked may be at most this many times its packed size.
#: (Deflate reaches ~1030:1 on zeros; .nii.gz members are ~1:1 and a raw mostly-empty mask ~100:1.)
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


_ERRORS = {**views._ERRORS, 413: s.ErrorSerializer, 415: s.ErrorSerializer}


class BidsZipRefused(ValidationFailed):
    """The zip is not safe or not readable; nothing was unpacked into the study."""

    def __init__(self, message: str):
        super().__init__(message, field="file")


def receive_body(request: Request, directory: Path, limit: int) -> Path:
    """Stream the request body to ``directory/upload.zip``, stopping at ``limit`` bytes."""
    name = request.query_params.get("filename", "dataset.zip")[:200]
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(too_large_message(name, limit))
    path = directory / "upload.zip"
    received = 0
    stream = request._request  # the Django request: read the raw body in chunks
    with open(path, "wb") as out:
        while chunk := stream.read(_CHUNK):
            received += len(chunk)
            if received > limit:
                raise UploadTooLarge(too_large_message(name, limit))
            out.write(chunk)
    if received == 0:
        raise BidsZipRefused("the request has no body: send the zip file itself (Content-Type: application/zip)")
    return path


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it could escape the target folder."""
    if "\\" in name or name.startswith("/") or "\x00" in name:
        return None
    path = PurePosixPath(name)
    if any(part in ("..",) for part in path.parts) or (path.parts and ":" in path.parts[0]):
        return None
    return path


def check_zip(archive: zipfile.ZipFile, *, max_unpacked: int) -> list[zipfile.ZipInfo]:
    """The members to unpack, after checking the archive's directory; raise on anything unsafe."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise BidsZipRefused(f"the zip has {len(members)} members; at most {MAX_MEMBERS} are accepted")
    total = 0
    for info in members:
        if _safe_member_path(info.filename) is None:
            raise BidsZipRefused(f"unsafe path in the zip: {info.filename!r} (absolute or with '..')")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BidsZipRefused(f"the zip holds a symbolic link: {info.filename!r}")
        if info.flag_bits & 0x1:
            raise BidsZipRefused(f"the zip holds an encrypted member: {info.filename!r}")
        if info.is_dir():
            continue
        total += info.file_size
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BidsZipRefused(
                f"{info.filename!r} unpacks to {human_bytes(info.file_size)} from {human_bytes(info.compress_size)} "
                f"(more than {MAX_RATIO}:1): refused as a possible zip bomb"
            )
    if total > max_unpacked:
        raise BidsZipRefused(
            f"the zip unpacks to {human_bytes(total)}, more than the limit of {human_bytes(max_unpacked)}"
        )
    return members


def unpack(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], target: Path, *, max_unpacked: int) -> None:
    """Unpack checked members, counting the bytes really written (sizes in a zip can lie)."""
    written = 0
    for info in members:
        rel = _safe_member_path(info.filename)
        assert rel is not None
        dest = target.joinpath(*rel.parts)
        if not dest.resolve().is_relative_to(target.resolve()):
            raise BidsZipRefused(f"unsafe path in the zip: {info.filename!r}")
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        member_written = 0
        with archive.open(info) as src, open(dest, "wb") as out:
            while chunk := src.read(_CHUNK):
                member_written += len(chunk)
                written += len(chunk)
                if member_written > info.file_size or written > max_unpacked:
                    raise BidsZipRefused(
                        f"{info.filename!r} unpacks to more than its zip entry says: refused as a possible zip bomb"
                    )
                out.write(chunk)


def dataset_root(folder: Path) -> Path:
    """The folder holding ``sub-*``: the unpacked folder, or its one top-level folder."""
    if any(folder.glob("sub-*")):
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir() and any(entries[0].glob("sub-*")):
        return entries[0]
    raise BidsZipRefused("no sub-* folder at the top of the zip (or of its one top-level folder): not a BIDS dataset")


def report_data(report: ImportReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "imported": [
            {"path": i.path, "subject": i.subject, "session": i.session, "kind": i.kind, "label": i.label,
             "series": i.series_id}
            for i in report.imported
        ],
        "skipped": [{"path": k.path, "category": k.category, "reason": k.reason} for k in report.skipped],
        "subjects_created": report.subjects_created,
        "sessions_created": report.sessions_created,
        "summary": report.summary_lines()[0],
    }


_ReportSerializer = inline_serializer(
    "BidsImportReport",
    {
        "dry_run": serializers.BooleanField(),
        "imported": serializers.ListField(child=serializers.DictField()),
        "skipped": serializers.ListField(child=serializers.DictField()),
        "subjects_created": serializers.ListField(child=serializers.CharField()),
        "sessions_created": serializers.ListField(child=serializers.CharField()),
        "summary": serializers.CharField(),
    },
)


class ZipBodyParser(BaseParser):
    """Accepts a zip body without reading it: the view streams it itself, after the rights check.

    (DRF parses the body when the session authentication's CSRF check looks at ``request.POST``;
    this parser leaves it untouched.)
    """

    media_type = "application/zip"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict:
        return {}


class OctetStreamBodyParser(ZipBodyParser):
    media_type = "application/octet-stream"


class WindowsZipBodyParser(ZipBodyParser):
    media_type = "application/x-zip-compressed"


ZIP_MEDIA_TYPES = frozenset(p.media_type for p in (ZipBodyParser, OctetStreamBodyParser, WindowsZipBodyParser))


@extend_schema(tags=["studies"])
class BidsImportApi(views._Api, APIView):
    parser_classes = [ZipBodyParser, OctetStreamBodyParser, WindowsZipBodyParser]

    @extend_schema(
        summary="Import a BIDS dataset sent as a zip (the study's admins)",
        description=(
            "The body is the zip file (`Content-Type: application/zip`). Runs the same import as "
            "`manage.py import_bids` and answers what was imported and what was skipped and why. "
            "Unsafe or oversized zips are refused with a message and nothing is stored."
        ),
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, required=False, description="validate only"),
            OpenApiParameter("filename", OpenApiTypes.STR, required=False, description="for messages"),
        ],
        request={"application/zip": OpenApiTypes.BINARY},
        responses={200: _ReportSerializer, **_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = get_visible_or_404(studies_visible_to(request.user), pk, "study")
        require_study_admin(request.user, study, "import data")
        media_type = (request.content_type or "").split(";")[0].strip().lower()
        if media_type not in ZIP_MEDIA_TYPES:
            raise exceptions.UnsupportedMediaType(
                media_type, detail=f"send the zip file itself as the body (Content-Type: application/zip), not {media_type or 'nothing'}"
            )
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes", "on")
        limit = max_upload_bytes()
        max_unpacked = MAX_UNPACKED_FACTOR * limit
        tmp = Path(tempfile.mkdtemp(prefix="qsmreview-bids-zip-", dir=settings.FILE_UPLOAD_TEMP_DIR))
        try:
            path = receive_body(request, tmp, limit)
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise BidsZipRefused(f"not a zip file: {exc}") from exc
            with archive:
                members = check_zip(archive, max_unpacked=max_unpacked)
                stem = Path(request.query_params.get("filename", "dataset.zip")).name.removesuffix(".zip")
                target = tmp / (_safe_folder_name(stem) or "dataset")
                target.mkdir()
                try:
                    unpack(archive, members, target, max_unpacked=max_unpacked)
                except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
                    raise BidsZipRefused(f"the zip cannot be read: {exc}") from exc
                except OSError as exc:  # e.g. a file and a folder of the same name
                    raise BidsZipRefused(f"the zip cannot be unpacked: {exc.strerror or exc}") from exc
            path.unlink()
            report = import_bids(dataset_root(target), study=study, by=request.user, dry_run=dry_run)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Response(report_data(report))


def _safe_folder_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip(".")[:100]
