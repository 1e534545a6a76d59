"""The study's assignments and progress page: who rates which session, and how far each rater is.

A study's admins assign sessions to its raters (one by one or in bulk), unassign (forcing, with a
reason, when the rater has saved work), reopen a submitted case and read each assignment's audit
trail; those writes go through the REST API (``assignments.js``). The study's PI reads the same
table with no controls. Everyone else gets 404, as if the study had no such page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from qsmreview.access import assignments_visible_to, can_manage_study, can_see_unblinded, studies_visible_to
from qsmreview.annotations.models import Assignment
from qsmreview.annotations.selectors import session_rateability
from qsmreview.studies.models import Role, Session, Study

#: Seconds between two refreshes of the table (assignments.js); the page states it.
REFRESH_SECONDS = 15


@dataclass
class Cell:
    """One rater on one session: their active assignment, or None (not assigned)."""

    rater: object
    assignment: Assignment | None
    case_url: str = ""


@dataclass
class Row:
    session: Session
    rateable: bool
    reason: str
    cells: list[Cell] = field(default_factory=list)


def _study_or_404(request: HttpRequest, study_id: int) -> Study:
    """The study, when the user reads its progress (its admins and PI, superusers); else 404."""
    study = studies_visible_to(request.user).filter(pk=study_id).first()
    if study is None or not can_see_unblinded(request.user, study):
        raise Http404("no such study")
    return study


def _case_url(assignment_id: int) -> str:
    """The rater's workspace for an assignment (``rate-case``), which admins open read-only."""
    try:
        return reverse("rate-case", args=[assignment_id])
    except NoReverseMatch:
        return f"/rate/{assignment_id}/"


def _progress_grid(study: Study, user) -> tuple[list, list[Row]]:
    """The study's raters (by username) and one row per session (by subject code, label).

    Raters are the study's rater members plus anyone still holding an active assignment there
    (a rater whose membership was removed stays visible until unassigned).
    """
    assignments = {
        (a.session_id, a.rater_id): a
        for a in assignments_visible_to(user).filter(session__subject__study=study, active=True)
    }
    raters = list(
        get_user_model()
        .objects.filter(
            Q(memberships__study=study, memberships__role=Role.RATER)
            | Q(pk__in=[rater_id for _, rater_id in assignments])
        )
        .distinct()
        .order_by("username")
    )
    sessions = Session.objects.filter(subject__study=study).select_related("subject").order_by(
        "subject__code", "label", "pk"
    )
    rows = []
    for session in sessions:
        rateable, reason = session_rateability(session)
        cells = []
        for rater in raters:
            a = assignments.get((session.pk, rater.pk))
            cells.append(Cell(rater=rater, assignment=a, case_url=_case_url(a.pk) if a else ""))
        rows.append(Row(session=session, rateable=rateable, reason=reason, cells=cells))
    return raters, rows


@login_required
def study_assignments(request: HttpRequest, study_id: int) -> HttpResponse:
    """The page; ``?partial=rows`` answers only the table body (the page's refresh)."""
    study = _study_or_404(request, study_id)
    raters, rows = _progress_grid(study, request.user)
    context = {
        "study": study,
        "raters": raters,
        "rows": rows,
        "can_manage": can_manage_study(request.user, study),
        "refresh_seconds": REFRESH_SECONDS,
    }
    if request.GET.get("partial") == "rows":
        return render(request, "annotations/_assignment_rows.html", context)
    return render(request, "annotations/study_assignments.html", context)
