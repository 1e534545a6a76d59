"""REST views of a study's statistics, lesion table, patient table and imported tables
(``/api/v1/studies/<id>/...``).

Every read goes through :func:`qsmreview.reports.selectors.study_for` (the study's admins and PI,
superusers): for a rater or an outsider the study's statistics do not exist (404). One small view
per endpoint.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.access import require_manage
from qsmreview.api.downloads import JsonErrorsForDownloads
from qsmreview.api.upload_gate import set_upload_gate
from qsmreview.processing.api.serializers import JobBriefSerializer
from qsmreview.reports import selectors
from qsmreview.reports.api import serializers as s
from qsmreview.reports.filters import EXCLUDED, SOURCE_HELP
from qsmreview.reports.services import lesion_table_import, statistics_request
from qsmreview.reports.statistics_csv import STATISTICS_COLUMNS, statistics_rows
from qsmreview.reports.views_common import pending_job

_READ_ERRORS = {400: s.ErrorSerializer, 401: OpenApiResponse(description="not authenticated"), 404: s.ErrorSerializer}
_WRITE_ERRORS = {**_READ_ERRORS, 403: s.ErrorSerializer}
_FILTERS = [
    OpenApiParameter("source", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description=SOURCE_HELP),
    OpenApiParameter("excluded", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, enum=list(EXCLUDED),
                     description="leave QC-excluded lesions out (default) or include them"),
    OpenApiParameter("solver", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                     description="each session's newest consensus measured on this QSM solver's map "
                                 "(e.g. admm, toolbox; imported tables left out); default: the current consensus"),
]


class _Api:
    authentication_classes = [TokenAuthentication, SessionAuthentication]


def _csv(columns: Sequence[str], rows: Iterable[dict[str, Any]], filename: str) -> HttpResponse:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _statistics(request: Request, study: Any, filters: Any) -> dict[str, Any]:
    table = selectors.lesion_table(study, filters)
    snapshot = selectors.latest_snapshot(study, filters)
    return {
        "filters": {**filters.as_dict(), "solver": filters.solver},
        "up_to_date": snapshot is not None and snapshot.input_digest == table.digest,
        "snapshot": snapshot,
        "job": pending_job(study, filters),
    }


@extend_schema(tags=["statistics"])
class StudyStatisticsApi(_Api, APIView):
    @extend_schema(
        summary="The study's newest statistics snapshot under the filters (admins and PI)",
        description=(
            "The snapshot (Table 3's tests with the Bonferroni correction, group summaries, mixed "
            "model, per-patient counts) with its provenance and age; `up_to_date` says whether it "
            "was made from the current lesion table, `job` a statistics job queued or running. "
            "`snapshot` is null when none was computed for these filters yet (POST to ask)."
        ),
        parameters=_FILTERS,
        responses={200: s.StatisticsOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        filters = selectors.study_filters(study, request.query_params)
        return Response(s.StatisticsOutputSerializer(_statistics(request, study, filters)).data)

    @extend_schema(
        summary="Compute the statistics under the filters (a `statistics` job; admins and PI)",
        description="Answers 202 with the job (an already queued or running one for the same filters).",
        request=s.RequestInputSerializer,
        responses={202: JobBriefSerializer, **_READ_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        data = s.RequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filters = selectors.study_filters(study, data.validated_data)
        job = statistics_request(by=request.user, study=study, filters=filters)
        return Response(JobBriefSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["statistics"])
class StudyStatisticsCsvApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="The newest snapshot's tests as CSV (404 when there is none for the filters)",
        description="Columns: " + ", ".join(STATISTICS_COLUMNS) + ".",
        parameters=_FILTERS,
        responses={(200, "text/csv"): OpenApiTypes.STR, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        from qsmreview.errors import NotFound

        study = selectors.study_for(request.user, pk)
        filters = selectors.study_filters(study, request.query_params)
        snapshot = selectors.latest_snapshot(study, filters)
        if snapshot is None:
            raise NotFound("no statistics snapshot for these filters yet")
        return _csv(STATISTICS_COLUMNS, statistics_rows(snapshot.result),
                    f"study-{study.pk}_statistics-{snapshot.pk}.csv")


@extend_schema(tags=["statistics"])
class StudyLesionTableApi(_Api, APIView):
    @extend_schema(
        summary="The study's lesion table under the filters (consensus and imported lesions)",
        parameters=_FILTERS,
        responses={200: s.StudyLesionOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        table = selectors.lesion_table(study, selectors.study_filters(study, request.query_params))
        return Response(s.StudyLesionOutputSerializer(table.rows, many=True).data)


@extend_schema(tags=["statistics"])
class StudyLesionTableCsvApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="The study's lesion table as CSV",
        description="Columns: " + ", ".join(selectors.LESION_COLUMNS) + ".",
        parameters=_FILTERS,
        responses={(200, "text/csv"): OpenApiTypes.STR, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        study = selectors.study_for(request.user, pk)
        table = selectors.lesion_table(study, selectors.study_filters(study, request.query_params))
        return _csv(selectors.LESION_COLUMNS, table.rows, f"study-{study.pk}_lesions.csv")


@extend_schema(tags=["statistics"])
class StudyPatientTableApi(_Api, APIView):
    @extend_schema(
        summary="The patient table: demographics, lesions by type, mean relative susceptibility by type",
        parameters=_FILTERS,
        responses={200: s.StudyPatientOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        table = selectors.lesion_table(study, selectors.study_filters(study, request.query_params))
        return Response(s.StudyPatientOutputSerializer(selectors.patient_table(study, table.rows), many=True).data)


@extend_schema(tags=["statistics"])
class StudyPatientTableCsvApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="The patient table as CSV",
        description="Columns: " + ", ".join(selectors.PATIENT_COLUMNS) + ".",
        parameters=_FILTERS,
        responses={(200, "text/csv"): OpenApiTypes.STR, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        study = selectors.study_for(request.user, pk)
        table = selectors.lesion_table(study, selectors.study_filters(study, request.query_params))
        return _csv(selectors.PATIENT_COLUMNS, selectors.patient_table(study, table.rows),
                    f"study-{study.pk}_patients.csv")


@extend_schema(tags=["statistics"])
class StudyImportedTablesApi(_Api, APIView):
    parser_classes = [MultiPartParser, FormParser]

    # Permission before body (qsmreview.api.upload_gate): a caller who may not import into the
    # study in the URL is refused before a byte of the file is read.

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        if request.method == "POST":
            pk = kwargs.get("pk")
            self._gate = functools.cache(lambda: self._import_target(request.user, pk))
            set_upload_gate(request, self._gate)
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            self._gate()

    @staticmethod
    def _import_target(user: Any, pk: Any) -> Any:
        study = selectors.study_for(user, pk)
        require_manage(user, study, "import lesion tables")
        return study

    @extend_schema(
        summary="Lesion tables imported into the study (admins and PI)",
        responses={200: s.ImportedTableOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        return Response(s.ImportedTableOutputSerializer(selectors.imported_tables(study), many=True).data)

    @extend_schema(
        summary="Import a lesion table CSV (admins): measurements made elsewhere",
        description=(
            "Columns `subject, lesion, lesion_type, portion, relative_susceptibility_ppm` (others "
            "ignored), checked by the statistics core's rules. Nothing is stored on any error: 400 "
            "lists every wrong row in `rows` (`line`, `column`, `message`). Queues a statistics job."
        ),
        request={"multipart/form-data": s.ImportInputSerializer},
        responses={201: s.ImportedTableOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = self._gate()
        data = s.ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        name = data.validated_data.get("name") or upload.name or "lesion table"
        imported = lesion_table_import(by=request.user, study=study, name=name, content=upload.read())
        return Response(s.ImportedTableOutputSerializer(imported).data, status=status.HTTP_201_CREATED)
