"""Server-rendered pages: the user's studies, one study's data, and the live jobs page.

Every page reads through :mod:`qsmreview.access`; a study the user cannot see is 404.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.db.models import Count, Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from qsmreview.annotations.models import AssignmentStatus
from qsmreview.api.ids import parse_id
from qsmreview.errors import DomainError, ValidationFailed
from qsmreview.jobs.api.serializers import JobSerializer
from qsmreview.jobs.demo_kinds import SELFTEST
from qsmreview.jobs.models import JobStatus
from qsmreview.jobs.services import job_submit, jobs_sweep_stale_if_due
from qsmreview.studies.models import Membership, Role
from qsmreview.access import (
    assignments_visible_to,
    can_manage_study,
    can_see_unblinded,
    jobs_visible_to,
    role_in_study,
    series_visible_to,
    sessions_visible_to,
    studies_managed_by,
    studies_visible_to,
    subjects_visible_to,
)

#: Rows shown on the jobs page (and refreshed by jobs.js from the API's first page).
JOBS_PAGE_SIZE = 50


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The user's studies. Counts are of what the user may see: a rater's are their assigned
    sessions and those sessions' subjects, never the whole study's."""
    user = request.user
    studies = studies_visible_to(user).order_by("name")
    n_subjects = _count_by_study(subjects_visible_to(user), "study_id")
    n_sessions = _count_by_study(sessions_visible_to(user), "subject__study_id")
    roles = dict(Membership.objects.filter(user=user).values_list("study_id", "role"))
    rows = [
        (
            study,
            roles.get(study.pk) or ("admin" if user.is_superuser else ""),
            n_subjects.get(study.pk, 0),
            n_sessions.get(study.pk, 0),
        )
        for study in studies
    ]
    return render(
        request,
        "web/home.html",
        {"rows": rows, "cases": _own_cases(user), "rate_url": _rate_queue_url()},
    )


def _count_by_study(queryset, study_field: str) -> dict[int, int]:
    return dict(
        queryset.order_by().values(study_field).annotate(n=Count("pk", distinct=True)).values_list(study_field, "n")
    )


def _own_cases(user) -> dict[str, int] | None:
    """The user's own active cases as a rater (None when they rate in no study): total, submitted."""
    if not Membership.objects.filter(user=user, role=Role.RATER).exists():
        return None
    mine = assignments_visible_to(user).filter(rater=user, active=True)
    return {
        "total": mine.count(),
        "submitted": mine.filter(status=AssignmentStatus.SUBMITTED).count(),
    }


def _rate_queue_url() -> str:
    """The rater's queue page (``rate-queue``, the rater workspace's own URL module)."""
    try:
        return reverse("rate-queue")
    except NoReverseMatch:
        return "/rate/"


@login_required
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = studies_visible_to(request.user).filter(pk=study_id).first()
    if study is None:
        raise Http404("no such study")
    sessions = sessions_visible_to(request.user).filter(subject__study=study).order_by("label")
    subjects = (
        subjects_visible_to(request.user)
        .filter(study=study)
        .prefetch_related(Prefetch("sessions", queryset=sessions))
        .order_by("code")
    )
    series_by_session: dict[int, list] = defaultdict(list)
    for series in (
        series_visible_to(request.user)
        .filter(session__subject__study=study)
        .order_by("kind", "label", "space", "-version")
    ):
        series_by_session[series.session_id].append(series)
    table = [
        (subject, [(session, series_by_session.get(session.pk, [])) for session in subject.sessions.all()])
        for subject in subjects
    ]
    return render(
        request,
        "web/study.html",
        {
            "study": study,
            "table": table,
            "role": role_in_study(request.user, study),
            "can_manage": can_manage_study(request.user, study),
            "sees_jobs": can_see_unblinded(request.user, study),
            "rates": role_in_study(request.user, study) == Role.RATER,
            "rate_url": _rate_queue_url(),
            "n_sessions": sessions.count(),
        },
    )


def _page_id(value: str, name: str) -> int:
    """An id from a page's query or form; a bad one is a 400 page naming it."""
    try:
        return parse_id(value, name)
    except ValidationFailed as exc:
        raise BadRequest(exc.message) from exc


@login_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    jobs_sweep_stale_if_due()
    jobs = jobs_visible_to(request.user).select_related("study", "session__subject")
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    study_id = request.GET.get("study", "")
    if study_id:
        jobs = jobs.filter(study_id=_page_id(study_id, "study"))
    managed = studies_managed_by(request.user).order_by("name")
    managed_ids = set(managed.values_list("pk", flat=True))
    rows = JobSerializer(
        jobs.prefetch_related("outputs").select_related("created_by")[:JOBS_PAGE_SIZE],
        many=True,
        context={"managed_study_ids": managed_ids},
    ).data
    return render(
        request,
        "web/jobs.html",
        {
            "jobs": rows,
            "managed_studies": managed,
            "statuses": JobStatus.choices,
            "status": status,
            "study_filter": study_id,
            "visible_studies": studies_visible_to(request.user).filter(
                pk__in=jobs_visible_to(request.user).values("study_id")
            ).order_by("name"),
            "page_size": JOBS_PAGE_SIZE,
        },
    )


@login_required
@require_POST
def jobs_submit_selftest(request: HttpRequest) -> HttpResponse:
    """Queue a self-test job (checks that workers run jobs); the study's admins only."""
    study_id = _page_id(request.POST.get("study", ""), "study")
    study = studies_visible_to(request.user).filter(pk=study_id).first()
    if study is None:
        raise Http404("no such study")
    try:  # job_submit refuses anyone but the study's admins
        steps = request.POST.get("steps", "").strip()
        params = {"steps": int(steps)} if steps.isascii() and steps.isdigit() else {}
        job = job_submit(kind=SELFTEST, parameters=params, study=study, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Queued self-test job #{job.pk}.")
    return redirect("jobs")
