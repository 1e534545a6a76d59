"""The jobs API: list, inspect, submit, cancel and retry background jobs.

Every job is read through :func:`qsmreview.access.jobs_visible_to` (the study's admins
and PIs): any other job answers 404. Cancel, retry and submit are for the study's admins (403).
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.api.ids import IdFilter
from qsmreview.errors import Forbidden, NotFound, ValidationFailed
from qsmreview.jobs.api.serializers import JobKindSerializer, JobSerializer, JobSubmitSerializer
from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.runners import get_job_kind, job_kinds
from qsmreview.jobs.services import job_cancel, job_retry, job_submit, jobs_sweep_stale_if_due
from qsmreview.access import (
    can_manage_study,
    jobs_visible_to,
    sessions_visible_to,
    studies_managed_by,
    studies_visible_to,
)


def visible_jobs(request: Request) -> QuerySet[Job]:
    return (
        jobs_visible_to(request.user)
        .select_related("created_by", "study", "session__subject")
        .prefetch_related("outputs")
    )


def job_for(request: Request, job_id: int) -> Job:
    job = visible_jobs(request).filter(pk=job_id).first()
    if job is None:
        raise NotFound("no such job")
    return job


def serializer_context(request: Request) -> dict:
    return {
        "request": request,
        "managed_study_ids": set(studies_managed_by(request.user).values_list("pk", flat=True)),
    }


class JobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter()
    study = IdFilter(field_name="study_id")
    session = IdFilter(field_name="session_id")

    class Meta:
        model = Job
        fields = ["status", "kind", "study", "session"]


class JobListView(generics.ListAPIView):
    serializer_class = JobSerializer
    filterset_class = JobFilter
    ordering_fields = ["created_at", "id", "status", "kind"]

    def get_queryset(self) -> QuerySet[Job]:
        return visible_jobs(self.request)

    def get_serializer_context(self) -> dict:
        return serializer_context(self.request)

    @extend_schema(summary="Jobs of the studies you administer or lead (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        jobs_sweep_stale_if_due()
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=JobSubmitSerializer,
        responses={201: JobSerializer},
        summary="Submit a job of a kind that allows direct submission (e.g. selftest); study admins only",
    )
    def post(self, request: Request) -> Response:
        data = JobSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        study = studies_visible_to(request.user).filter(pk=values["study"]).first()
        if study is None:
            raise NotFound("no such study")
        if not can_manage_study(request.user, study):
            raise Forbidden("only the study's admins can submit jobs")
        if not get_job_kind(values["kind"]).submittable:
            raise ValidationFailed(
                f"jobs of kind {values['kind']!r} are submitted through their own endpoint, not here",
                field="kind",
            )
        session = None
        if values["session"] is not None:
            session = sessions_visible_to(request.user).filter(pk=values["session"], subject__study=study).first()
            if session is None:
                raise NotFound("no such session in this study")
        job = job_submit(
            kind=values["kind"],
            parameters=values["parameters"],
            study=study,
            session=session,
            by=request.user,
            dedupe_key=values["dedupe_key"],
        )
        body = JobSerializer(job, context=serializer_context(request)).data
        return Response(body, status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    @extend_schema(responses=JobSerializer, summary="One job: progress, stage, timings, error, outputs")
    def get(self, request: Request, job_id: int) -> Response:
        job = job_for(request, job_id)
        return Response(JobSerializer(job, context=serializer_context(request)).data)


class JobCancelView(APIView):
    @extend_schema(request=None, responses=JobSerializer, summary="Cancel a queued or running job")
    def post(self, request: Request, job_id: int) -> Response:
        job = job_cancel(job=job_for(request, job_id), by=request.user)
        return Response(JobSerializer(job, context=serializer_context(request)).data)


class JobRetryView(APIView):
    @extend_schema(
        request=None,
        responses={201: JobSerializer},
        summary="Run a failed or cancelled job again, as a new job pointing back at it",
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = job_retry(job=job_for(request, job_id), by=request.user)
        return Response(JobSerializer(job, context=serializer_context(request)).data, status=status.HTTP_201_CREATED)


class JobKindsView(APIView):
    @extend_schema(responses=JobKindSerializer(many=True), summary="The registered job kinds")
    def get(self, request: Request) -> Response:
        return Response(JobKindSerializer(list(job_kinds().values()), many=True).data)
