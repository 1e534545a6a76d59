"""Reads of the rater workspace: is a session ready to rate, what a rater sees, who is how far.

Visibility (who may see which assignment, revision or series) is decided by
:mod:`qsmreview.access`; these selectors only combine its querysets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qsmreview.access import AnyUser, assignments_visible_to, series_visible_to
from qsmreview.annotations.models import Assignment, AssignmentStatus
from qsmreview.studies.models import Series, SeriesKind, Session, Space, Study

#: What a rater reads, in panel order: the T2* magnitude first, then the structural contrasts.
PANEL_KINDS: tuple[str, ...] = (
    SeriesKind.T2STAR_MAGNITUDE,
    SeriesKind.FLAIR,
    SeriesKind.T1_WM_NULLED,
    SeriesKind.T1_CSF_NULLED,
)
#: Contrasts that must be on the T2* grid before a session can be rated, with their short names.
_COREGISTERED_KINDS: tuple[tuple[str, str], ...] = (
    (SeriesKind.FLAIR, "FLAIR"),
    (SeriesKind.T1_WM_NULLED, "T1 WM-nulled"),
    (SeriesKind.T1_CSF_NULLED, "T1 CSF-nulled"),
)


def current_t2star_magnitude(session: Session | int) -> Series | None:
    """The session's current T2* magnitude on the T2* grid (the grid every mask is drawn on).

    With several labels (rare: e.g. two reconstructions), the first by label.
    """
    session_id = session if isinstance(session, int) else session.pk
    return (
        Series.objects.filter(
            session_id=session_id, kind=SeriesKind.T2STAR_MAGNITUDE, space=Space.T2STAR, is_current=True
        )
        .order_by("label", "-version")
        .first()
    )


def session_rateability(session: Session) -> tuple[bool, str]:
    """Whether a rater can work on ``session`` now, and if not, why (for the admin to fix).

    Rateable when the session has a current T2* magnitude and every current FLAIR / T1 WM-nulled /
    T1 CSF-nulled stored in space ``native`` also has a current version (same label) in space
    ``t2star``, so that every panel shows the grid the mask is drawn on.

    Returns
    -------
    (rateable, reason) : reason is "" when rateable.
    """
    if current_t2star_magnitude(session) is None:
        return False, "the session has no T2* magnitude yet: upload it"
    current = sorted(
        Series.objects.filter(
            session=session, is_current=True, kind__in=[k for k, _ in _COREGISTERED_KINDS]
        ).values_list("kind", "label", "space")
    )
    on_grid = {(kind, label) for kind, label, space in current if space == Space.T2STAR}
    for kind, name in _COREGISTERED_KINDS:
        for k, label, space in current:
            if k == kind and space == Space.NATIVE and (k, label) not in on_grid:
                tag = f" '{label}'" if label else ""
                return False, f"{name}{tag} is not on the T2* grid yet: run coregistration"
    return True, ""


def case_panels(session: Session, user: AnyUser) -> list[Series]:
    """The volumes of a case, in panel order, that ``user`` may see.

    The current ``t2star``-space series of kinds T2* magnitude, FLAIR, T1 WM-nulled,
    T1 CSF-nulled, in that order (by label within a kind). A series blinded to the user (a rater)
    is left out, as everywhere (:func:`qsmreview.access.series_visible_to`).
    """
    order = {kind: i for i, kind in enumerate(PANEL_KINDS)}
    rows = series_visible_to(user).filter(
        session=session, is_current=True, space=Space.T2STAR, kind__in=PANEL_KINDS
    )
    return sorted(rows, key=lambda s: (order[s.kind], s.label, s.pk))


@dataclass(frozen=True)
class ProgressRow:
    """One rater's state on one session (an active assignment)."""

    assignment: Assignment
    rateable: bool
    reason: str

    @property
    def status(self) -> str:
        return self.assignment.status

    @property
    def last_saved_at(self) -> datetime | None:
        return self.assignment.last_saved_at

    @property
    def lesion_count(self) -> int:
        return self.assignment.lesion_count

    @property
    def active_seconds(self) -> float:
        return self.assignment.active_seconds


def progress_rows(study: Study) -> list[ProgressRow]:
    """Every active assignment of the study with its session's rateability.

    Ordered by subject code, session label and rater username. The caller checks that the
    reader may see progress (the study's admins and PI).
    """
    assignments = list(
        Assignment.objects.filter(session__subject__study=study, active=True)
        .select_related("session__subject", "rater")
        .order_by("session__subject__code", "session__label", "rater__username")
    )
    cache: dict[int, tuple[bool, str]] = {}
    rows = []
    for a in assignments:
        if a.session_id not in cache:
            cache[a.session_id] = session_rateability(a.session)
        rateable, reason = cache[a.session_id]
        rows.append(ProgressRow(assignment=a, rateable=rateable, reason=reason))
    return rows


def rater_queue(user: AnyUser) -> list[Assignment]:
    """The user's own active assignments: in progress first, then not started, then submitted;
    by study, subject code and session label within each."""
    rank = {AssignmentStatus.IN_PROGRESS: 0, AssignmentStatus.NOT_STARTED: 1, AssignmentStatus.SUBMITTED: 2}
    if not user.is_authenticated:
        return []
    qs = (
        assignments_visible_to(user)
        .filter(rater=user, active=True)
        .select_related("session__subject__study")
    )
    return sorted(
        qs,
        key=lambda a: (
            rank.get(a.status, 3),
            a.session.subject.study.name,
            a.session.subject.code,
            a.session.label,
        ),
    )


def next_case(user: AnyUser) -> Assignment | None:
    """The case the rater should open next: the first unsubmitted one of :func:`rater_queue`."""
    for assignment in rater_queue(user):
        if assignment.status != AssignmentStatus.SUBMITTED:
            return assignment
    return None


def max_lesion_number(assignment: Assignment) -> int:
    """The largest lesion number used in any revision of the assignment (0 if none)."""
    largest = 0
    for lesions in assignment.revisions.values_list("lesions", flat=True):
        for item in lesions if isinstance(lesions, list) else []:
            number = item.get("number") if isinstance(item, dict) else None
            if isinstance(number, int) and not isinstance(number, bool):
                largest = max(largest, number)
    return largest


def next_lesion_number(assignment: Assignment) -> int:
    """The number for the case's next new lesion: 1 + the largest used in any of its revisions
    (conflict copies included), so that a lesion erased in an older revision never lends its
    number to a new one. The server numbers unanchored components from it, and the workspace
    (through the assignment's detail) numbers the lesions it draws from it."""
    return max_lesion_number(assignment) + 1
