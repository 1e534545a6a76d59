"""The processing overview of a study: which session has which series and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from qsmreview.errors import NotFound
from qsmreview.jobs.models import Job
from qsmreview.processing.services import PROCESSING_KINDS
from qsmreview.studies.models import Series, SeriesKind, Session, Study
from qsmreview.access import can_see_unblinded, jobs_visible_to, studies_visible_to


@dataclass
class SessionRow:
    session: Session
    #: kind -> the current series of that kind (several when labels differ, e.g. echoes)
    series: dict[str, list[Series]] = field(default_factory=dict)
    #: processing kind -> the newest job of that kind for this session
    latest_jobs: dict[str, Job] = field(default_factory=dict)


def processing_study_for(user, study_id: int) -> Study:
    """The study, if the user may read its processing state (its admins and PI); else 404."""
    study = studies_visible_to(user).filter(pk=study_id).first()
    if study is None or not can_see_unblinded(user, study):
        raise NotFound("no such study")
    return study


def processing_overview(*, study: Study, user) -> list[SessionRow]:
    """One row per session of the study, ordered by subject code and session label."""
    sessions = list(
        Session.objects.filter(subject__study=study)
        .select_related("subject")
        .order_by("subject__code", "label")
    )
    rows = {s.pk: SessionRow(session=s) for s in sessions}
    current = Series.objects.filter(session__in=sessions, is_current=True).order_by("kind", "label")
    for series in current:
        rows[series.session_id].series.setdefault(series.kind, []).append(series)
    jobs = jobs_visible_to(user).filter(session__in=sessions, kind__in=PROCESSING_KINDS)
    for job in jobs.order_by("-created_at", "-id"):
        rows[job.session_id].latest_jobs.setdefault(job.kind, job)
    return [rows[s.pk] for s in sessions]


#: Column order of the overview table.
OVERVIEW_KINDS = [
    SeriesKind.T2STAR_MAGNITUDE,
    SeriesKind.T2STAR_PHASE,
    SeriesKind.T1_WM_NULLED,
    SeriesKind.T1_CSF_NULLED,
    SeriesKind.FLAIR,
    SeriesKind.BRAIN_MASK,
    SeriesKind.TISSUE,
    SeriesKind.QSM,
]
