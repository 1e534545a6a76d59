"""REST views of studies, members, subjects, sessions and series (``/api/v1/``).

Every read goes through a ``qsmreview.access`` queryset, so an object the user may not see
answers 404 exactly as a missing one; a write by someone who can see the object but is not the
study's admin answers 403. Views validate with an input serializer, call a service and render with
an output serializer; the rules are in :mod:`qsmreview.access` and the services.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.api.downloads import (
    JsonErrorsForDownloads,
    accepts_gzip,
    etag_matches,
    gzip_encoded,
    if_none_match_parameter,
    stored_file_response,
)
from qsmreview.api.ids import MAX_ID, max_id, parse_id
from qsmreview.api.pagination import StandardPagination
from qsmreview.api.permissions import get_visible_or_404, require_study_admin, require_study_role
from qsmreview.api.error_responses import ERRORS as _ERRORS, READ_ERRORS as _READ_ERRORS
from qsmreview.api.upload_gate import set_upload_gate
from qsmreview.errors import Forbidden, NotFound, ValidationFailed
from qsmreview.studies.api import serializers as s
from qsmreview.studies.api.filters import SeriesFilter, SessionFilter, StudyFilter, SubjectFilter
from qsmreview.studies.models import Membership, Role, Series, Session, Study, Subject
from qsmreview.access import (
    series_visible_to,
    sessions_visible_to,
    studies_managed_by,
    studies_visible_to,
    subjects_visible_to,
)
from qsmreview.studies.services.display import display_etag, display_size, series_display_bytes
from qsmreview.studies.services.series import series_create_from_file
from qsmreview.studies.services.studies import (
    membership_remove,
    membership_set,
    series_update,
    session_create,
    session_update,
    study_create,
    study_update,
    subject_create,
    subject_update,
)
from qsmreview.studies.uploads import uploaded_file_path

#: Seconds a client may reuse a downloaded volume before revalidating it with If-None-Match.
#: Series never change, but their blinding can: keep it short and private to the user's agent.
VOLUME_MAX_AGE_S = 300


log = logging.getLogger(__name__)


# Settings shared by the views of this module. Token authentication comes first so that an
# anonymous request answers 401 with a ``WWW-Authenticate: Token`` header (DRF takes the header
# from the first class); browsers still authenticate with their session.
class _Api:
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    pagination_class = StandardPagination


def _ctx(request: Request) -> dict[str, Any]:
    return {"request": request}


# --- studies ---------------------------------------------------------------------------------


@extend_schema(tags=["studies"])
class StudyListApi(_Api, generics.ListAPIView):
    serializer_class = s.StudyOutputSerializer
    filterset_class = StudyFilter
    ordering_fields = ["id", "name", "created_at"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Study]:
        return studies_visible_to(self.request.user)

    @extend_schema(summary="Studies the caller is a member of")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a study (staff); the creator becomes its admin",
        request=s.StudyInputSerializer,
        responses={201: s.StudyOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        data = s.StudyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = study_create(by=request.user, **data.validated_data)
        return Response(s.StudyOutputSerializer(study, context=_ctx(request)).data, status=201)


@extend_schema(tags=["studies"])
class StudyDetailApi(_Api, APIView):
    def _study(self, request: Request, pk: int) -> Study:
        return get_visible_or_404(studies_visible_to(request.user), pk, "study")

    @extend_schema(summary="A study", responses={200: s.StudyOutputSerializer, **_READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        study = self._study(request, pk)
        return Response(s.StudyOutputSerializer(study, context=_ctx(request)).data)

    @extend_schema(
        summary="Change a study (its admins)",
        request=s.StudyInputSerializer(partial=True),
        responses={200: s.StudyOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def patch(self, request: Request, pk: int) -> Response:
        study = self._study(request, pk)
        data = s.StudyInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        study = study_update(study=study, by=request.user, **data.validated_data)
        return Response(s.StudyOutputSerializer(study, context=_ctx(request)).data)


# --- members ---------------------------------------------------------------------------------

_MEMBERS_READERS = (Role.ADMIN, Role.PI)


@extend_schema(tags=["studies"])
class StudyMemberListApi(_Api, generics.ListAPIView):
    serializer_class = s.MembershipOutputSerializer
    filterset_fields = ["role"]
    ordering_fields = ["role", "created_at", "user__username"]
    ordering = ["role", "user__username"]

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        study = get_visible_or_404(studies_visible_to(self.request.user), self.kwargs["pk"], "study")
        require_study_role(
            self.request.user,
            study,
            _MEMBERS_READERS,
            "only the study's admins and PI can see its members",
        )
        return study.memberships.select_related("user")

    @extend_schema(summary="Members of a study and their roles (admins and PI)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add a member or change their role (admins)",
        request=s.MembershipSetInputSerializer,
        responses={
            200: s.MembershipOutputSerializer,
            201: s.MembershipOutputSerializer,
            **_ERRORS,
            409: s.ErrorSerializer,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        study = get_visible_or_404(studies_visible_to(request.user), pk, "study")
        require_study_admin(request.user, study, "change its members")
        data = s.MembershipSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationFailed(f"no user named {username!r}", field="username")
        membership, created = membership_set(
            study=study, by=request.user, user=user, role=data.validated_data["role"]
        )
        return Response(
            s.MembershipOutputSerializer(membership).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=["studies"])
class StudyMemberDetailApi(_Api, APIView):
    @extend_schema(
        summary="Remove a member (admins); the last admin stays",
        responses={204: None, **_ERRORS, 409: s.ErrorSerializer},
    )
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        study = get_visible_or_404(studies_visible_to(request.user), pk, "study")
        require_study_admin(request.user, study, "change its members")
        membership = None
        if user_id <= max_id(get_user_model()):  # users' ids are 32-bit on PostgreSQL
            membership = study.memberships.select_related("user").filter(user_id=user_id).first()
        if membership is None:
            raise NotFound("no such member of this study")
        membership_remove(study=study, by=request.user, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- subjects --------------------------------------------------------------------------------


@extend_schema(tags=["subjects"])
class SubjectListApi(_Api, generics.ListAPIView):
    serializer_class = s.SubjectOutputSerializer
    filterset_class = SubjectFilter
    ordering_fields = ["id", "code", "created_at", "age_years"]
    ordering = ["study_id", "code"]

    def get_queryset(self) -> QuerySet[Subject]:
        return subjects_visible_to(self.request.user)

    @extend_schema(summary="Subjects of the caller's studies")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add a subject to a study (its admins)",
        request=s.SubjectCreateInputSerializer,
        responses={201: s.SubjectOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        data = s.SubjectCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        study = get_visible_or_404(studies_visible_to(request.user), fields.pop("study"), "study")
        subject = subject_create(study=study, by=request.user, **fields)
        return Response(s.SubjectOutputSerializer(subject).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["subjects"])
class SubjectDetailApi(_Api, APIView):
    def _subject(self, request: Request, pk: int) -> Subject:
        qs = subjects_visible_to(request.user).select_related("study")
        return get_visible_or_404(qs, pk, "subject")

    @extend_schema(summary="A subject", responses={200: s.SubjectOutputSerializer, **_READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.SubjectOutputSerializer(self._subject(request, pk)).data)

    @extend_schema(
        summary="Change a subject (its study's admins)",
        request=s.SubjectUpdateInputSerializer(partial=True),
        responses={200: s.SubjectOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def patch(self, request: Request, pk: int) -> Response:
        subject = self._subject(request, pk)
        data = s.SubjectUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subject = subject_update(subject=subject, by=request.user, **data.validated_data)
        return Response(s.SubjectOutputSerializer(subject).data)


# --- sessions --------------------------------------------------------------------------------


@extend_schema(tags=["sessions"])
class SessionListApi(_Api, generics.ListAPIView):
    serializer_class = s.SessionOutputSerializer
    filterset_class = SessionFilter
    ordering_fields = ["id", "label", "scan_date", "created_at", "subject__code"]
    ordering = ["subject__study_id", "subject__code", "label"]

    def get_queryset(self) -> QuerySet[Session]:
        return sessions_visible_to(self.request.user).select_related("subject")

    @extend_schema(summary="Sessions of the caller's studies")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add a session to a subject (its study's admins)",
        request=s.SessionCreateInputSerializer,
        responses={201: s.SessionOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        data = s.SessionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        subjects = subjects_visible_to(request.user).select_related("study")
        subject = get_visible_or_404(subjects, fields.pop("subject"), "subject")
        session = session_create(subject=subject, by=request.user, **fields)
        return Response(s.SessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["sessions"])
class SessionDetailApi(_Api, APIView):
    def _session(self, request: Request, pk: int) -> Session:
        qs = sessions_visible_to(request.user).select_related("subject__study")
        return get_visible_or_404(qs, pk, "session")

    @extend_schema(summary="A session", responses={200: s.SessionOutputSerializer, **_READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.SessionOutputSerializer(self._session(request, pk)).data)

    @extend_schema(
        summary="Change a session (its study's admins)",
        request=s.SessionUpdateInputSerializer(partial=True),
        responses={200: s.SessionOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def patch(self, request: Request, pk: int) -> Response:
        session = self._session(request, pk)
        data = s.SessionUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        session = session_update(session=session, by=request.user, **data.validated_data)
        return Response(s.SessionOutputSerializer(session).data)


# --- series ----------------------------------------------------------------------------------


def _series_queryset(request: Request) -> QuerySet[Series]:
    return series_visible_to(request.user).select_related("session__subject__study", "uploaded_by")


@extend_schema(tags=["series"])
class SeriesListApi(_Api, generics.ListAPIView):
    serializer_class = s.SeriesOutputSerializer
    filterset_class = SeriesFilter
    ordering_fields = ["id", "created_at", "kind", "label", "version"]
    ordering = ["session_id", "kind", "label", "-version"]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Series]:
        return _series_queryset(self.request)

    @extend_schema(summary="Series the caller may see (blinded ones only for admins and PI)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    # Permission before body (qsmreview.api.upload_gate): the upload is refused before its bytes
    # are read when the caller administers no study, or when ?session= names a session they may
    # not upload to. A browser's CSRF check parses the body inside authentication, so the gate is
    # installed on the request before DRF authenticates it; a token client meets it in initial().

    # The check runs once per request (a view instance serves one request): whichever of the gate,
    # initial() and post() comes first computes it; a refusal raises and is not kept.

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        if request.method == "POST":
            self._target = functools.cache(lambda: self._upload_target(request.user, request.GET))
            set_upload_gate(request, self._target)
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            self._target()

    @staticmethod
    def _upload_target(user: Any, query: Any) -> Session | None:
        """The session named by ``?session=`` if ``user`` may upload to it; raises to refuse."""
        if "session" in query:
            sessions = sessions_visible_to(user).select_related("subject__study")
            session = get_visible_or_404(sessions, parse_id(query["session"], "session"), "session")
            require_study_admin(user, session, "upload series")
            return session
        if not studies_managed_by(user).exists():
            raise Forbidden("only the study's admins can upload series")
        return None

    @extend_schema(
        summary="Upload a NIfTI volume as a new series (the study's admins)",
        description=(
            "Name the session in the URL (`?session=12`) to be refused before the file is sent "
            "when you may not upload there; `session` in the form is also accepted."
        ),
        parameters=[
            OpenApiParameter(
                "session",
                {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID},
                OpenApiParameter.QUERY,
                required=False,
                description="id of the session (checked before the body is read)",
            )
        ],
        request={"multipart/form-data": s.SeriesUploadInputSerializer},
        responses={201: s.SeriesOutputSerializer, **_ERRORS, 413: s.ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        target = self._target()
        data = s.SeriesUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        named = fields.pop("session", None)
        if target is not None and named is not None and named != target.pk:
            raise ValidationFailed(
                f"session {named} in the form is not ?session={target.pk}", field="session"
            )
        if target is None and named is None:
            raise ValidationFailed("session is required: ?session= in the URL or in the form", field="session")
        session = target or get_visible_or_404(
            sessions_visible_to(request.user).select_related("subject__study"), named, "session"
        )
        upload = fields.pop("file")
        with uploaded_file_path(upload) as path:
            series = series_create_from_file(
                session=session,
                path=path,
                original_filename=upload.name,
                by=request.user,
                **fields,
            )
        return Response(
            s.SeriesOutputSerializer(series, context=_ctx(request)).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["series"])
class SeriesDetailApi(_Api, APIView):
    @extend_schema(
        summary="A series' metadata", responses={200: s.SeriesOutputSerializer, **_READ_ERRORS}
    )
    def get(self, request: Request, pk: int) -> Response:
        series = get_visible_or_404(_series_queryset(request), pk, "series")
        return Response(s.SeriesOutputSerializer(series, context=_ctx(request)).data)

    @extend_schema(
        summary="Blind or unblind a series, or change which version is current (admins)",
        request=s.SeriesUpdateInputSerializer,
        responses={200: s.SeriesOutputSerializer, **_ERRORS, 409: s.ErrorSerializer},
    )
    def patch(self, request: Request, pk: int) -> Response:
        series = get_visible_or_404(_series_queryset(request), pk, "series")
        data = s.SeriesUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        series = series_update(series=series, by=request.user, **data.validated_data)
        return Response(s.SeriesOutputSerializer(series, context=_ctx(request)).data)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9.-]+")


def volume_filename(series: Series) -> str:
    """A BIDS-like download name, e.g. ``sub-P01_ses-01_qsm_v2.nii.gz``."""
    def safe(text: str) -> str:  # user-typed parts: no separators, quotes or slashes
        return _SAFE_NAME.sub("-", text)

    session = series.session
    parts = [f"sub-{safe(session.subject.code)}", f"ses-{safe(session.label)}", series.kind]
    if series.label:
        parts.append(safe(series.label))
    parts.append(f"v{series.version}")
    return "_".join(parts) + (".nii.gz" if series.file.name.lower().endswith(".gz") else ".nii")



@extend_schema(tags=["series"])
class SeriesVolumeApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="Download the series' NIfTI file",
        description=(
            "Streams the stored file. `ETag` is the series' SHA-256; send it back in "
            "`If-None-Match` to get 304 without the body. Blinded series answer 404 to raters."
        ),
        parameters=[
            if_none_match_parameter("3b0c…")
        ],
        responses={
            (200, "application/gzip"): OpenApiTypes.BINARY,
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="not modified: the client's copy is current"),
            **_READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return self._volume(request, pk, body=True)

    @extend_schema(exclude=True)
    def head(self, request: Request, pk: int) -> HttpResponse:
        """The GET's headers from the series row, without opening the file."""
        return self._volume(request, pk, body=False)

    def _volume(self, request: Request, pk: int, *, body: bool) -> HttpResponse:
        series = get_visible_or_404(_series_queryset(request), pk, "series")
        return stored_file_response(
            request,
            series.file,
            sha256=series.sha256,
            filename=volume_filename(series),
            cache_control=f"private, max-age={VOLUME_MAX_AGE_S}",
            missing=(
                f"the volume of series {series.pk} is missing from storage; "
                "ask the study's admins to restore it (or upload it again)"
            ),
            body=body,
            size=series.size_bytes,
        )


#: The display volume changes only with its ETag, but the caller's right to see it can change
#: (the series blinded, the session unassigned): the browser keeps its copy and revalidates it on
#: every use, which costs one small request answered 304 from the database alone.
DISPLAY_CACHE_CONTROL = "private, no-cache"


def display_filename(series: Series) -> str:
    """e.g. ``sub-P01_ses-01_t2star_mag_v1_display.nii``."""
    return volume_filename(series).removesuffix(".gz").removesuffix(".nii") + "_display.nii"


@extend_schema(tags=["series"])
class SeriesDisplayApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="The series as a 3-D uint8 display volume for the viewer",
        description=(
            "An uncompressed NIfTI-1 (`.nii`, no header extensions) on the series' own grid "
            "(same shape[:3], qform and sform), uint8, with `scl_slope`/`scl_inter` mapping the "
            "stored 0-255 back to source intensities over the 0.5-99.5 percentile range of the "
            "non-zero voxels (widened to include 0). Whole-number images in 0-255 (masks, tissue "
            "classes) pass through unscaled. A multi-echo T2* magnitude is shown as the "
            "root-sum-of-squares over its echoes (another 4-D series as its first echo). "
            "Computed on first use and cached. Sent gzip-encoded (`Content-Encoding: gzip`, the "
            "ETag then weak) to clients whose `Accept-Encoding` allows it, as browsers' does. "
            "`ETag` is `display-v1-<sha256>`; send it in `If-None-Match` for 304. `Cache-Control: private, no-cache`: revalidate on every use, "
            "so a series blinded or a session unassigned since stops being shown. Visibility is "
            "the series' own: 404 for what the caller may not see."
        ),
        parameters=[
            if_none_match_parameter("display-v1-3b0c…")
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="not modified: the client's copy is current"),
            410: s.ErrorSerializer,
            **_READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return self._display(request, pk, body=True)

    @extend_schema(exclude=True)
    def head(self, request: Request, pk: int) -> HttpResponse:
        """The GET's headers from the series row, without computing or reading the volume."""
        return self._display(request, pk, body=False)

    def _display(self, request: Request, pk: int, *, body: bool) -> HttpResponse:
        series = get_visible_or_404(_series_queryset(request), pk, "series")
        etag = display_etag(series)
        gzip = accepts_gzip(request)
        response: HttpResponse
        if etag_matches(request.headers.get("If-None-Match"), etag):
            response = HttpResponseNotModified()
        else:
            response = HttpResponse(content_type="application/octet-stream")
            response["Content-Length"] = str(display_size(series))
            response["Content-Disposition"] = content_disposition_header(True, display_filename(series))
        response["ETag"] = f'"{etag}"'
        response["Cache-Control"] = DISPLAY_CACHE_CONTROL
        response["Vary"] = "Authorization, Cookie, Accept-Encoding"
        if response.status_code == 200:
            content = series_display_bytes(series) if body else b""
            if gzip and body:
                gzip_encoded(response, content)
            elif gzip:  # HEAD: the encoded length is known only by encoding
                response["Content-Encoding"] = "gzip"
                response["ETag"] = f'W/"{etag}"'
                del response["Content-Length"]
            else:
                response.content = content
        elif gzip:
            response["ETag"] = f'W/"{etag}"'
        return response
