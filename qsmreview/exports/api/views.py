"""``GET /api/v1/studies/{id}/export/bids.zip``: the study's BIDS derivatives dataset as a zip.

Built by :func:`qsmreview.exports.services.study_export_zip` into a temporary file, then streamed;
the temporary folder is removed as soon as the file is open (the open file stays readable). The
study's admins and PI only: for a rater or an outsider the study does not exist (404).
"""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.views import APIView

from qsmreview.access import AnyUser
from qsmreview.api.downloads import JsonErrorsForDownloads
from qsmreview.exports.services import study_export_zip
from qsmreview.studies.api.serializers import ErrorSerializer


def export_zip_response(user: AnyUser, study_id: int) -> HttpResponse:
    """The zip as an attachment (shared by the API route and the study page's button)."""
    with study_export_zip(by=user, study=study_id) as (path, name):
        stream = open(path, "rb")  # closed by the response; the folder goes when this block ends
    response = FileResponse(stream, as_attachment=True, filename=name, content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    response["Vary"] = "Authorization, Cookie"
    return response


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
            401: OpenApiResponse(description="not authenticated"),
            404: ErrorSerializer,
            410: ErrorSerializer,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return export_zip_response(request.user, pk)
