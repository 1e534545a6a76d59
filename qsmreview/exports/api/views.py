"""The export routes. The study's admins and PI only: for a rater or an outsider the study (and
its exports) do not exist (404).

- ``GET /api/v1/studies/{id}/export/bids.zip``: the study's BIDS derivatives dataset as a zip,
  built by :func:`qsmreview.exports.services.study_export_zip` into a temporary file in the
  request, then streamed (the temporary folder is removed as soon as the file is open).
- ``POST /api/v1/studies/{id}/exports/``: prepare one on the workers (an ``export`` job, 202);
  ``GET``: the prepared ones; ``GET /api/v1/exports/{id}/download/``: one of them
  (:mod:`qsmreview.exports.prepared`).
"""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.access import AnyUser
from qsmreview.api.downloads import JsonErrorsForDownloads, stored_file_response
from qsmreview.api.error_responses import READ_ERRORS
from qsmreview.exports.models import StudyExport
from qsmreview.exports.prepared import export_for_download, export_request, exports_of
from qsmreview.exports.services import study_export_zip
from qsmreview.processing.api.serializers import JobBriefSerializer
from qsmreview.studies.api.serializers import ErrorSerializer



def export_zip_response(user: AnyUser, study_id: int) -> HttpResponse:
    """The zip as an attachment (shared by the API route and the study page's button)."""
    with study_export_zip(by=user, study=study_id) as (path, name, _):
        stream = open(path, "rb")  # closed by the response; the folder goes when this block ends
    response = FileResponse(stream, as_attachment=True, filename=name, content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    response["Vary"] = "Authorization, Cookie"
    return response


def export_file_response(request: HttpRequest, export: StudyExport) -> HttpResponse:
    """A prepared export's zip as an attachment, streamed from storage (410 when storage lost it)."""
    return stored_file_response(
        request, export.file, sha256=export.sha256, filename=export.name, cache_control="private, no-store",
        missing=f"the zip of export {export.pk} is missing from storage", content_type="application/zip",
    )


class StudyExportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.IntegerField(source="study_id")
    job = serializers.IntegerField(source="job_id", allow_null=True)
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    n_sessions = serializers.IntegerField()
    n_files = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    download = serializers.SerializerMethodField()

    def get_download(self, obj: StudyExport) -> str:
        return f"/api/v1/exports/{obj.pk}/download/"


@extend_schema(tags=["exports"])
class StudyBidsExportApi(JsonErrorsForDownloads, APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]

    @extend_schema(
        summary="Download the study as a BIDS derivatives dataset (zip)",
        description=(
            "The study's admins and PI (404 for anyone else). One zip with a single top-level folder "
            "`<study>-bids/`: `dataset_description.json` (DatasetType derivative, GeneratedBy "
            "qsmreview), `README`, `participants.tsv`, `lesions.tsv` with its data dictionary "
            "`lesions.json`, and per session `sub-<s>/ses-<t>/anat/` with the current QSM "
            "(`_Chimap.nii.gz`, ppm), the current consensus lesions (`_desc-consensus_dseg`) and "
            "reference ROIs (`_desc-reference_dseg`), each with a JSON sidecar (provenance) and a "
            "`_dseg.tsv` look-up. Built in full before the first byte is sent. See docs/export.md."
        ),
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            **READ_ERRORS,
            410: ErrorSerializer,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return export_zip_response(request.user, pk)


@extend_schema(tags=["exports"])
class StudyExportsApi(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]

    @extend_schema(
        summary="The study's prepared BIDS exports, newest first (admins and PI)",
        responses={200: StudyExportOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(StudyExportOutputSerializer(exports_of(by=request.user, study=pk), many=True).data)

    @extend_schema(
        summary="Prepare a BIDS export on the workers (an `export` job; admins and PI)",
        description=(
            "Answers 202 with the job (the one already queued or running for the study, if any). "
            "When it succeeds, `GET` lists the export with its `download` URL; the newest three are kept."
        ),
        request=None,
        responses={202: JobBriefSerializer, **READ_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        job = export_request(by=request.user, study=pk)
        return Response(JobBriefSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["exports"])
class ExportDownloadApi(JsonErrorsForDownloads, APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]

    @extend_schema(
        summary="Download a prepared BIDS export (zip)",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **READ_ERRORS, 410: ErrorSerializer},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return export_file_response(request, export_for_download(by=request.user, pk=pk))
