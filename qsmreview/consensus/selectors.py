"""Reads of consensus results, scoped by :mod:`qsmreview.access` (admins and PI of the study)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from qsmreview.access import (
    AnyUser,
    can_see_unblinded,
    consensus_runs_visible_to,
    studies_visible_to,
)
from qsmreview.api.ids import id_problem
from qsmreview.consensus.models import ConsensusRun, LesionRow, MeasurementSet
from qsmreview.errors import NotFound, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.studies.models import Session, Study

#: Columns of the CSV lesion table: the exchanged columns first (docs/consensus-app.md).
CSV_COLUMNS = (
    "subject",
    "lesion",
    "lesion_type",
    "portion",
    "relative_susceptibility_ppm",
    "rule_type",
    "n_voxels",
    "volume_mm3",
    "cortical_fraction",
    "raters",
    "lesion_mean_ppm",
    "lesion_sd_ppm",
    "reference_mean_ppm",
    "reference_sd_ppm",
    "reference_n_voxels",
    "excluded",
    "exclusion_reason",
)


def run_for(user: AnyUser, pk: Any) -> ConsensusRun:
    """The run ``pk`` if the user may read it; else NotFound (as if it did not exist)."""
    try:
        run = (
            consensus_runs_visible_to(user)
            .select_related("session__subject__study", "tissue_series", "qsm_series")
            .filter(pk=int(pk))
            .first()
        )
    except (TypeError, ValueError):
        run = None
    if run is None:
        raise NotFound("no such consensus run")
    return run


def measurement_set_for(run: ConsensusRun, number: Any = None) -> MeasurementSet:
    """The run's current measurement set, or the one numbered ``number``."""
    qs = run.measurement_sets.all()
    if number in (None, ""):
        found = qs.filter(current=True).first()
        if found is None:
            raise NotFound(f"consensus run {run.pk} has no measurements ({run.status}: {run.error or 'no result'})")
        return found
    value, problem = id_problem(number)
    if value is None:
        raise ValidationFailed(f"set {problem}", field="set")
    found = qs.filter(number=value).first()
    if found is None:
        raise NotFound(f"consensus run {run.pk} has no measurement set {value}")
    return found


def runs_of_session(user: AnyUser, session: Session) -> QuerySet[ConsensusRun]:
    return consensus_runs_visible_to(user).filter(session=session).select_related("session__subject").order_by(
        "-created_at", "-pk"
    )


def study_for(user: AnyUser, pk: Any) -> Study:
    """The study, for its admins and PI (superusers); else NotFound, raters included."""
    try:
        study = studies_visible_to(user).filter(pk=int(pk)).first()
    except (TypeError, ValueError):
        study = None
    if study is None or not can_see_unblinded(user, study):
        raise NotFound("no such study")
    return study


def current_runs(study: Study) -> QuerySet[ConsensusRun]:
    return (
        ConsensusRun.objects.filter(session__subject__study=study, current=True)
        .select_related("session__subject")
        .order_by("session__subject__code", "session__label")
    )


def csv_rows(measurements: MeasurementSet) -> Iterator[list[Any]]:
    for row in measurements.rows.order_by("lesion", "portion"):
        values = []
        for column in CSV_COLUMNS:
            value = getattr(row, column)
            if column == "raters":
                value = ";".join(map(str, value or []))
            values.append("" if value is None else value)
        yield values


@dataclass
class SessionConsensus:
    """What the session's consensus page shows."""

    session: Session
    run: ConsensusRun | None
    measurements: MeasurementSet | None
    rows: list[LesionRow] = field(default_factory=list)
    runs: list[ConsensusRun] = field(default_factory=list)
    latest_job: Job | None = None


def session_consensus(user: AnyUser, session: Session) -> SessionConsensus:
    runs = list(runs_of_session(user, session))
    run = next((r for r in runs if r.current), None)
    measurements = run.measurement_sets.filter(current=True).first() if run else None
    rows = list(measurements.rows.order_by("lesion", "portion")) if measurements else []
    job = Job.objects.filter(session=session, kind="consensus").order_by("-created_at", "-pk").first()
    return SessionConsensus(session=session, run=run, measurements=measurements, rows=rows, runs=runs, latest_job=job)
