"""REST views of assignments, revisions and rating progress (``/api/v1/``).

Every read goes through :func:`qsmreview.access.assignments_visible_to` /
:func:`~qsmreview.access.revisions_visible_to`: anything the caller may not see (another rater's
case, a case of another study) answers 404 exactly as an id that does not exist. Writes are the
services'; they check the caller (admins assign, unassign and reopen; only the rater saves,
restores and submits: 403 for an admin or PI). Views parse with an input serializer, call one
service and render with an output serializer.
"""

from __future__ import annotations

import functools
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.access import (
    assignments_visible_to,
    can_rate,
    require_manage,
    require_rate,
    revisions_visible_to,
    studies_visible_to,
)
from qsmreview.annotations import masks
from qsmreview.annotations.api import serializers as s
from qsmreview.annotations.models import Assignment, AssignmentEvent, AssignmentStatus, Revision
from qsmreview.annotations.selectors import case_panels, next_lesion_number, progress_rows, session_rateability
from qsmreview.annotations.services import (
    assignment_reopen,
    assignment_submit,
    assignment_unassign,
    assignments_create_bulk,
    revision_create,
    revision_restore,
)
from qsmreview.api.downloads import JsonErrorsForDownloads, if_none_match_parameter, stored_file_response
from qsmreview.api.ids import IdFilter, max_id
from qsmreview.api.pagination import StandardPagination
from qsmreview.api.permissions import get_visible_or_404, require_study_role
from qsmreview.api.error_responses import ERRORS as _ERRORS, READ_ERRORS as _READ_ERRORS, WRITE_ERRORS as _WRITE_ERRORS
from qsmreview.api.upload_gate import set_upload_gate
from qsmreview.errors import TooLarge, ValidationFailed
from qsmreview.studies.models import Membership, Role, Session, Study
from qsmreview.studies.uploads import human_bytes

#: Revisions never change: a client may keep a mask as long as it likes.
MASK_CACHE_CONTROL = "private, max-age=31536000, immutable"


class _Api:
    # Token first: an anonymous request answers 401 with WWW-Authenticate (as the studies API).
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    pagination_class = StandardPagination


def _assignments(request: Request) -> QuerySet[Assignment]:
    return assignments_visible_to(request.user).select_related(
        "session__subject__study", "rater", "assigned_by"
    )


def _assignment(request: Request, pk: int) -> Assignment:
    return get_visible_or_404(_assignments(request), pk, "assignment")


def _revisions(request: Request) -> QuerySet[Revision]:
    return revisions_visible_to(request.user).select_related(
        "author", "assignment__session__subject__study", "assignment__rater"
    )


def _revision(request: Request, pk: int) -> Revision:
    return get_visible_or_404(_revisions(request), pk, "revision")


def _parent(assignment: Assignment, pk: int | None, field: str = "parent") -> Revision | None:
    """The named revision of this case (None for None); another case's id is 400, like an unknown one."""
    if pk is None:
        return None
    revision = Revision.objects.filter(assignment=assignment, pk=pk).first()
    if revision is None:
        raise ValidationFailed(f"{field}: no revision {pk} in this case", field=field)
    return revision


def _study_readable(request: Request, pk: int) -> Study:
    """The study, for its admins and PI; 404 if invisible, 403 for a rater."""
    study = get_visible_or_404(studies_visible_to(request.user), pk, "study")
    require_study_role(request.user, study, (Role.ADMIN, Role.PI), "only the study's admins and PI can see this")
    return study


# --- assignments -------------------------------------------------------------------------------


class AssignmentFilter(django_filters.FilterSet):
    study = IdFilter(field_name="session__subject__study_id")
    session = IdFilter(field_name="session_id")
    rater = IdFilter(field_name="rater_id")
    status = django_filters.ChoiceFilter(choices=AssignmentStatus.choices)
    active = django_filters.BooleanFilter()

    class Meta:
        model = Assignment
        fields = ["study", "session", "rater", "status", "active"]


@extend_schema(tags=["assignments"])
class AssignmentListApi(_Api, generics.ListAPIView):
    serializer_class = s.AssignmentOutputSerializer
    filterset_class = AssignmentFilter
    ordering_fields = ["id", "created_at", "last_saved_at", "status"]
    ordering = ["session__subject__study_id", "session__subject__code", "session__label", "rater__username"]

    def get_queryset(self) -> QuerySet[Assignment]:
        return _assignments(self.request)

    @extend_schema(summary="Assignments the caller may see (a rater: their own)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["assignments"])
class StudyAssignmentsApi(_Api, APIView):
    @extend_schema(
        summary="Assign sessions to raters (the study's admins); idempotent",
        request=s.AssignInputSerializer,
        responses={201: s.AssignmentOutputSerializer(many=True), **_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = get_visible_or_404(studies_visible_to(request.user), pk, "study")
        require_manage(request.user, study, "assign cases")
        data = s.AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        raters = []
        for user_id in dict.fromkeys(data.validated_data["raters"]):
            # Only the study's raters are found: a user id elsewhere reveals nothing about its owner.
            membership = (
                Membership.objects.select_related("user")
                .filter(study=study, role=Role.RATER, user_id=user_id)
                .first()
                if user_id <= max_id(get_user_model())
                else None
            )
            if membership is None:
                raise ValidationFailed(f"raters: user {user_id} is not a rater of this study", field="raters")
            raters.append(membership.user)
        sessions = None
        if "sessions" in data.validated_data:
            in_study = Session.objects.filter(subject__study=study).select_related("subject")
            sessions = []
            for session_id in dict.fromkeys(data.validated_data["sessions"]):
                session = in_study.filter(pk=session_id).first()
                if session is None:
                    raise ValidationFailed(f"sessions: no session {session_id} in this study", field="sessions")
                sessions.append(session)
        created = assignments_create_bulk(by=request.user, study=study, raters=raters, sessions=sessions)
        return Response(s.AssignmentOutputSerializer(created, many=True).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["assignments"])
class AssignmentDetailApi(_Api, APIView):
    @extend_schema(
        summary="An assignment, with its panels and whether it can be rated now",
        responses={200: s.AssignmentDetailOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        assignment = _assignment(request, pk)
        rateable, reason = session_rateability(assignment.session)
        case = s.CaseView(
            rateable=rateable,
            reason=reason,
            panels=case_panels(assignment.session, request.user),
            read_only=not (can_rate(request.user, assignment) and assignment.status != AssignmentStatus.SUBMITTED),
            next_lesion_number=next_lesion_number(assignment),
        )
        return Response(s.AssignmentDetailOutputSerializer(assignment, context={"case": case}).data)

    @extend_schema(
        summary="Unassign (the study's admins); saved work needs force and a reason",
        request=s.UnassignInputSerializer,
        responses={204: None, **_WRITE_ERRORS},
    )
    def delete(self, request: Request, pk: int) -> Response:
        assignment = _assignment(request, pk)
        data = s.UnassignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment_unassign(by=request.user, assignment=assignment, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["assignments"])
class AssignmentReopenApi(_Api, APIView):
    @extend_schema(
        summary="Reopen a submitted case (the study's admins)",
        request=s.ReopenInputSerializer,
        responses={200: s.AssignmentOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        assignment = _assignment(request, pk)
        data = s.ReopenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = assignment_reopen(by=request.user, assignment=assignment, reason=data.validated_data["reason"])
        return Response(s.AssignmentOutputSerializer(assignment).data)


@extend_schema(tags=["assignments"])
class AssignmentSubmitApi(_Api, APIView):
    @extend_schema(
        summary="Submit the case (its rater): the latest revision is the answer",
        request=s.SubmitInputSerializer,
        responses={200: s.AssignmentOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        assignment = _assignment(request, pk)
        data = s.SubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_rate(request.user, assignment)  # 403 for an admin or PI before the revision is looked up
        revision = _parent(assignment, data.validated_data["revision"], "revision")
        assignment = assignment_submit(by=request.user, assignment=assignment, revision=revision)
        return Response(s.AssignmentOutputSerializer(assignment).data)


@extend_schema(tags=["assignments"])
class AssignmentEventListApi(_Api, generics.ListAPIView):
    serializer_class = s.AssignmentEventOutputSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return AssignmentEvent.objects.none()
        assignment = _assignment(self.request, self.kwargs["pk"])
        require_study_role(
            self.request.user,
            assignment.session,
            (Role.ADMIN, Role.PI),
            "only the study's admins and PI can see the audit trail",
        )
        return assignment.events.select_related("by").order_by("created_at", "pk")

    @extend_schema(summary="The audit trail of an assignment (admins and PI)", responses={200: s.AssignmentEventOutputSerializer(many=True), **_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- revisions ---------------------------------------------------------------------------------


@extend_schema(tags=["revisions"])
class AssignmentRevisionListApi(_Api, generics.ListAPIView):
    serializer_class = s.RevisionOutputSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Revision]:
        if getattr(self, "swagger_fake_view", False):
            return Revision.objects.none()
        assignment = _assignment(self.request, self.kwargs["pk"])
        return _revisions(self.request).filter(assignment=assignment).order_by("-number")

    @extend_schema(summary="Every revision of the case, newest first (conflict copies included)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    # Permission before body (qsmreview.api.upload_gate): a caller who may not save in this case
    # is refused before the mask is read. The check runs once per request.

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        if request.method == "POST":
            pk = kwargs.get("pk")
            self._target = functools.cache(lambda: self._rate_target(request.user, pk))
            set_upload_gate(request, self._target)
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            self._target()

    @staticmethod
    def _rate_target(user: Any, pk: Any) -> Assignment:
        assignment = get_visible_or_404(
            assignments_visible_to(user).select_related("session__subject__study"), pk, "assignment"
        )
        require_rate(user, assignment)
        return assignment

    @extend_schema(
        summary="Save the mask and lesions (the case's rater)",
        description=(
            "Multipart: `mask` (NIfTI on the T2* grid), `parent` (the revision the edit started "
            "from; empty for the first save), `lesions` (JSON text), `active_seconds`. A save "
            "from a stale parent is kept as a conflict copy and answers 409 with "
            "`latest_revision` and `conflict_revision`."
        ),
        request={"multipart/form-data": s.RevisionUploadInputSerializer},
        responses={201: s.RevisionOutputSerializer, **_WRITE_ERRORS, 413: s.ErrorSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        assignment = self._target()
        data = s.RevisionUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = fields["mask"]
        limit = masks.max_mask_upload_bytes()
        if upload.size is not None and upload.size > limit:
            raise TooLarge(
                f"mask upload of {human_bytes(upload.size)} is larger than the limit of {human_bytes(limit)}",
                field="mask",
            )
        upload.seek(0)
        revision = revision_create(
            by=request.user,
            assignment=assignment,
            mask_bytes=upload.read(limit + 1),
            parent=_parent(assignment, fields["parent"]),
            lesions=fields["lesions"],
            active_seconds=fields["active_seconds"],
        )
        return Response(s.RevisionOutputSerializer(revision).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["revisions"])
class RevisionDetailApi(_Api, APIView):
    @extend_schema(summary="A revision's metadata and lesions", responses={200: s.RevisionOutputSerializer, **_READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.RevisionOutputSerializer(_revision(request, pk)).data)


@extend_schema(tags=["revisions"])
class RevisionRestoreApi(_Api, APIView):
    @extend_schema(
        summary="Restore a revision as the new latest (the case's rater)",
        request=s.RestoreInputSerializer,
        responses={201: s.RevisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        revision = _revision(request, pk)
        data = s.RestoreInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_rate(request.user, revision.assignment)
        parent = _parent(revision.assignment, data.validated_data["parent"])
        restored = revision_restore(by=request.user, revision=revision, parent=parent)
        return Response(s.RevisionOutputSerializer(restored).data, status=status.HTTP_201_CREATED)



@extend_schema(tags=["revisions"])
class RevisionMaskApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="Download the revision's mask (.nii.gz, uint8 on the T2* grid)",
        description=(
            "`ETag` is the revision's SHA-256; send it in `If-None-Match` for 304. Revisions "
            "never change, so the response may be cached for a year."
        ),
        parameters=[
            if_none_match_parameter("3b0c…")
        ],
        responses={
            (200, "application/gzip"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="not modified"),
            **_READ_ERRORS,
            410: s.ErrorSerializer,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        revision = _revision(request, pk)
        return stored_file_response(
            request,
            revision.file,
            sha256=revision.sha256,
            filename=f"assignment-{revision.assignment_id}_r{revision.number}_mask.nii.gz",
            cache_control=MASK_CACHE_CONTROL,
            missing=f"the mask of revision {revision.pk} is missing from storage; ask the study's admins",
        )


# --- progress ----------------------------------------------------------------------------------


@extend_schema(tags=["assignments"])
class StudyProgressApi(_Api, APIView):
    @extend_schema(
        summary="Rating progress: one row per active assignment (admins and PI)",
        responses={200: s.ProgressRowOutputSerializer(many=True), **_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = _study_readable(request, pk)
        return Response(s.ProgressRowOutputSerializer(progress_rows(study), many=True).data)
