"""The rater's pages: the queue of assigned cases and the workspace where one case is drawn.

Both read through :mod:`qsmreview.access`: the queue lists only the user's own active
assignments (as rater), and a workspace whose assignment the user may not see answers 404 as if
it did not exist. An admin or PI may open a rater's workspace read-only. The pages decide
nothing else: the workspace script reads the assignment, its panels and its latest revision
from the API (``/api/v1/assignments/<id>/``) and saves through it, where the services check
rights again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse

from qsmreview.access import assignments_visible_to, can_rate
from qsmreview.annotations.models import Assignment, AssignmentStatus
from qsmreview.annotations.selectors import rater_queue, session_rateability

#: Where the API lives (the contract's routes are built on it by the workspace script).
API_ROOT = "/api/v1/"


@login_required
def rate_queue(request: HttpRequest) -> HttpResponse:
    """The rater's cases: status, rateable or why not, last save, lesions; "Next case" opens the
    first case not submitted that can be rated. An admin's or PI's queue is their own
    assignments as rater: usually none."""
    rows: list[dict[str, Any]] = []
    next_url = None
    for assignment in rater_queue(request.user):
        rateable, reason = session_rateability(assignment.session)
        url = reverse("rate-case", kwargs={"assignment_id": assignment.pk})
        rows.append({"assignment": assignment, "rateable": rateable, "reason": reason, "url": url})
        if next_url is None and rateable and assignment.status != AssignmentStatus.SUBMITTED:
            next_url = url
    return render(request, "annotations/queue.html", {"rows": rows, "next_url": next_url})


@login_required
def rate_case(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """The workspace for one case: panels in NiiVue, drawing tools, the lesion list."""
    assignment: Assignment | None = (
        assignments_visible_to(request.user)
        .select_related("session__subject__study", "rater")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        raise Http404("no such assignment")
    session = assignment.session
    study = session.subject.study
    may_draw = can_rate(request.user, assignment) and assignment.status != AssignmentStatus.SUBMITTED
    config = {
        "assignment_id": assignment.pk,
        "api_root": API_ROOT,
        "queue_url": reverse("rate-queue"),
        # The API's detail decides; these are what the page shows before it answers.
        "read_only": not may_draw,
        "is_rater": assignment.rater_id == request.user.pk,
        "min_lesion_diameter_mm": study.min_lesion_diameter_mm,
        "modules": {
            "niivue": static("vendor/niivue/index.js"),
            "saving": static("qsmreview/annotate/saving.js"),
        },
    }
    return render(
        request,
        "annotations/workspace.html",
        {"assignment": assignment, "session": session, "study": study, "config": config},
    )
