"""Processing over the REST API: the study overview, and running jobs per session or study."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.api.permissions import get_visible_or_404
from qsmreview.processing.api.serializers import (
    BatchResultSerializer,
    JobBriefSerializer,
    ProcessingRequestSerializer,
    SessionRowSerializer,
)
from qsmreview.processing.selectors import processing_overview, processing_study_for
from qsmreview.processing.services import processing_submit, processing_submit_study
from qsmreview.access import sessions_visible_to


class StudyProcessingView(APIView):
    @extend_schema(responses=SessionRowSerializer(many=True), summary="Processing state of every session")
    def get(self, request: Request, study_id: int) -> Response:
        study = processing_study_for(request.user, study_id)
        rows = processing_overview(study=study, user=request.user)
        return Response(SessionRowSerializer(rows, many=True).data)

    @extend_schema(
        request=ProcessingRequestSerializer,
        responses={201: BatchResultSerializer},
        summary="Run a processing job on every session of the study that has its inputs",
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = processing_study_for(request.user, study_id)
        data = ProcessingRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = processing_submit_study(study=study, by=request.user, **data.validated_data)
        return Response(BatchResultSerializer(result).data, status=status.HTTP_201_CREATED)


class SessionProcessingView(APIView):
    @extend_schema(
        request=ProcessingRequestSerializer,
        responses={201: JobBriefSerializer},
        summary="Run a processing job on one session",
    )
    def post(self, request: Request, session_id: int) -> Response:
        session = get_visible_or_404(
            sessions_visible_to(request.user).select_related("subject__study"), session_id, "session"
        )
        data = ProcessingRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = processing_submit(session=session, by=request.user, **data.validated_data)
        return Response(JobBriefSerializer(job).data, status=status.HTTP_201_CREATED)
