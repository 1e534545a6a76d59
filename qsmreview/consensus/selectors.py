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


@dataclass
class PooledPair:
    """One rater pair's (or rater vs consensus) detection pooled over sessions."""

    reference: str
    tested: str
    sessions: int = 0
    n_reference: int = 0
    n_tested: int = 0
    detected: int = 0
    tested_true: int = 0
    dice: list[float] = field(default_factory=list)

    @property
    def sensitivity(self) -> float | None:
        return self.detected / self.n_reference if self.n_reference else None

    @property
    def ppv(self) -> float | None:
        return self.tested_true / self.n_tested if self.n_tested else None

    @property
    def f1(self) -> float | None:
        s, p = self.sensitivity, self.ppv
        return None if s is None or p is None or s + p == 0 else 2 * s * p / (s + p)

    @property
    def mean_dice(self) -> float | None:
        return sum(self.dice) / len(self.dice) if self.dice else None


def pooled_agreement(runs: list[ConsensusRun]) -> dict[str, list[PooledPair]]:
    """Lesion detection pooled over sessions: counts summed per pair, then sensitivity, PPV and F1
    of the sums (each lesion weighs the same, whichever session it is in); Dice averaged."""
    pooled: dict[str, dict[tuple[str, str], PooledPair]] = {"pairs": {}, "vs_consensus": {}}
    for run in runs:
        for key in pooled:
            for item in (run.agreement or {}).get(key, []):
                pair = pooled[key].setdefault(
                    (item["reference"], item["tested"]), PooledPair(item["reference"], item["tested"])
                )
                pair.sessions += 1
                for count in ("n_reference", "n_tested", "detected", "tested_true"):
                    setattr(pair, count, getattr(pair, count) + int(item.get(count) or 0))
                if item.get("dice") is not None:
                    pair.dice.append(float(item["dice"]))
    return {key: sorted(pairs.values(), key=lambda p: (p.reference, p.tested)) for key, pairs in pooled.items()}


def qc_lesions(run: ConsensusRun, measurements: MeasurementSet) -> list[dict[str, Any]]:
    """One entry per lesion of a measurement set for QC: its rows merged, flags, the proposed
    vessel voxels in the lesion and in its reference ROIs, the exclusion in effect, and where it
    is (the lesion voxel nearest its centroid, voxel indices and scanner mm) for the viewer.

    The caller has checked that the user may read ``run``.
    """
    import numpy as np
    from scipy import ndimage

    from qsmreview.consensus.models import DecisionKind
    from qsmreview.consensus.qc_edits import load_vessel_proposals
    from qsmreview.consensus.services import effective_decisions, load_labels, load_labels_and_affine

    lesions, affine = load_labels_and_affine(measurements.lesion_labels)
    reference = load_labels(measurements.reference_labels)
    vessels = load_vessel_proposals(run)
    exclusions = {d.lesion: d.pk for d in effective_decisions(run) if d.kind == DecisionKind.EXCLUDE}
    out: dict[int, dict[str, Any]] = {}
    for row in measurements.rows.order_by("lesion", "portion"):
        entry = out.setdefault(
            row.lesion,
            {
                "lesion": row.lesion,
                "lesion_type": row.lesion_type,
                "rule_type": row.rule_type,
                "n_voxels": 0,
                "excluded": row.excluded,
                "exclusion_reason": row.exclusion_reason,
                "exclusion_decision": exclusions.get(row.lesion),
                "qsm_mask_cut_fraction": row.extras.get("qsm_mask_cut_fraction"),
                "portions": [],
            },
        )
        entry["n_voxels"] += row.n_voxels
        entry["portions"].append(
            {
                "portion": row.portion,
                "roi": 10 * row.lesion + (1 if row.portion == "wm" else 2),
                "n_voxels": row.n_voxels,
                "relative_susceptibility_ppm": row.relative_susceptibility_ppm,
                "reference_n_voxels": row.reference_n_voxels,
                "reference_flag": row.extras.get("reference_flag"),
            }
        )
    # Each lesion and its ROIs are looked at inside their bounding boxes only (full maps are
    # 13 M voxels at 384 x 384 x 90).
    owners = np.where(reference > 0, reference // 10, 0)  # ROI -> its lesion id
    lesion_boxes = ndimage.find_objects(np.clip(lesions, 0, None))
    roi_boxes = ndimage.find_objects(owners)

    def box_of(boxes: list[Any], lesion: int) -> Any:
        return boxes[lesion - 1] if 0 < lesion <= len(boxes) else None

    def vessel_count(box: Any, labels: np.ndarray, lesion: int) -> int | None:
        if vessels is None:
            return None
        if box is None:
            return 0
        return int(np.count_nonzero(vessels[box] & (labels[box] == lesion)))

    for lesion, entry in out.items():
        box = box_of(lesion_boxes, lesion)
        entry["vessel_voxels_lesion"] = vessel_count(box, lesions, lesion)
        entry["vessel_voxels_reference"] = vessel_count(box_of(roi_boxes, lesion), owners, lesion)
        voxels = np.empty((0, 3), dtype=np.int64)
        if box is not None:
            voxels = np.argwhere(lesions[box] == lesion) + np.array([b.start for b in box])
        if len(voxels):
            nearest = voxels[np.argmin(((voxels - voxels.mean(axis=0)) ** 2).sum(axis=1))]
            entry["centre_vox"] = [int(c) for c in nearest]
            entry["centre_mm"] = [round(float(c), 3) for c in (affine @ np.r_[nearest, 1.0])[:3]]
        else:
            entry["centre_vox"] = entry["centre_mm"] = None
    return [out[k] for k in sorted(out)]
