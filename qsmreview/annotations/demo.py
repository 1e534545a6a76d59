"""The demo study's rater work: every session assigned to rater1..3, two sessions already rated.

MS001 and MS002 carry a submitted annotation from each of the three raters, made from the
phantom's lesion truth by :func:`qsmreview.lesions.synthetic.synthetic_ratings` with the
disagreements real raters show (rater1 misses a lesion, rater2 adds a false positive, boundaries
differ by a voxel here and there, and the class votes split on a mixed lesion), so consensus,
agreement and the PI's pages have something to show. MS003 stays open for a visitor to rate.

Everything goes through the annotation services, as the workspace's requests do: the demo admin
assigns; each rater saves (so the revision's author is that rater) and submits. Idempotent:
missing assignments are added (one the admin unassigned is left alone), and an assignment that
has any revision is never touched again.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np
from django.contrib.auth.models import AbstractBaseUser

from qsmreview.annotations.models import Assignment
from qsmreview.annotations.selectors import current_t2star_magnitude
from qsmreview.annotations.services import assignment_submit, assignments_create_bulk, revision_create
from qsmreview.lesions.synthetic import SyntheticRating, synthetic_ratings
from qsmreview.studies.models import Series, SeriesKind, Session, Study
from qsmreview.studies.storage import series_load

#: Demo raters, each with the synthetic rater whose habits they show (lesions.synthetic).
DEMO_RATERS: dict[str, str] = {"rater1": "A", "rater2": "B", "rater3": "C"}
#: Subjects whose session every demo rater has already rated and submitted.
DEMO_RATED_SUBJECTS: tuple[str, ...] = ("MS001", "MS002")
#: Editing time each demo rater "spent" on a case (s), for the progress table.
DEMO_ACTIVE_SECONDS: dict[str, float] = {"rater1": 840.0, "rater2": 1260.0, "rater3": 1020.0}


@dataclass
class DemoAnnotations:
    """What :func:`demo_annotations_ensure` did."""

    assignments_created: int = 0
    #: "MS001/rater2" for every annotation saved and submitted by this run.
    submitted: list[str] = field(default_factory=list)
    #: Why a session that should be rated was not (e.g. its truth is missing).
    skipped: list[str] = field(default_factory=list)


def _assign_missing(*, study: Study, by: AbstractBaseUser, raters: list[AbstractBaseUser]) -> int:
    """Assign every session to every demo rater who has no assignment row for it yet."""
    sessions = list(Session.objects.filter(subject__study=study).select_related("subject"))
    created = 0
    for rater in raters:
        have = set(Assignment.objects.filter(rater=rater, session__in=sessions).values_list("session_id", flat=True))
        missing = [s for s in sessions if s.pk not in have]
        if missing:
            created += len(assignments_create_bulk(by=by, study=study, raters=[rater], sessions=missing))
    return created


def _mask_bytes(mask: np.ndarray, affine: np.ndarray) -> bytes:
    """The mask as a client uploads it: gzip NIfTI-1, uint8, on the T2* grid."""
    image = nib.Nifti1Image(mask.astype(np.uint8), affine)
    image.header.set_xyzt_units("mm", "sec")
    return gzip.compress(image.to_bytes(), mtime=0)


def _anchors(rating: SyntheticRating, affine: np.ndarray) -> list[dict[str, Any]]:
    """The rater's lesion list as the workspace sends it: numbered 1..n, each anchored at the
    world centre (mm) of one of its voxels."""
    rows = []
    for number, lesion in enumerate(rating.lesions, start=1):
        world = affine @ np.array([*lesion.anchor_voxel, 1.0])
        rows.append(
            {
                "number": number,
                "anchor_mm": [float(v) for v in world[:3]],
                "vote": lesion.vote,
                "confidence": lesion.confidence,
                "note": "",
            }
        )
    return rows


def _truth(session: Session) -> tuple[np.ndarray, Mapping[str, str], np.ndarray | None] | None:
    """(lesion ids, their classes, brain mask or None) of a demo session, or None if missing."""
    ids = Series.objects.filter(
        session=session, kind=SeriesKind.OTHER, label="lesion-ids", is_current=True
    ).first()
    if ids is None or "lesion_types" not in ids.provenance:
        return None
    brain = Series.objects.filter(session=session, kind=SeriesKind.BRAIN_MASK, is_current=True).first()
    allowed = np.asanyarray(series_load(brain).dataobj) > 0 if brain is not None else None
    return np.asanyarray(series_load(ids).dataobj), ids.provenance["lesion_types"], allowed


def _rate_session(
    *, session: Session, assignments: dict[str, Assignment], seed: int, result: DemoAnnotations
) -> None:
    label = session.subject.code
    todo = {name: a for name, a in assignments.items() if not a.revisions.exists()}
    if not todo:
        return
    reference = current_t2star_magnitude(session)
    truth = _truth(session)
    if reference is None or truth is None:
        result.skipped.append(f"{label}: no T2* magnitude or lesion truth")
        return
    ids, types, allowed = truth
    affine = np.asarray(reference.affine, dtype=np.float64)
    if tuple(ids.shape) != tuple(reference.shape[:3]):
        result.skipped.append(f"{label}: the lesion truth is not on the T2* grid")
        return
    try:
        ratings = {r.rater: r for r in synthetic_ratings(ids, types, allowed=allowed, seed=seed)}
    except ValueError as exc:  # a grid too small for the phantom to place enough lesions
        result.skipped.append(f"{label}: {exc}")
        return
    for name, assignment in todo.items():
        rating = ratings[DEMO_RATERS[name]]
        rater = assignment.rater
        revision = revision_create(
            by=rater,
            assignment=assignment,
            mask_bytes=_mask_bytes(rating.mask, affine),
            parent=None,
            lesions=_anchors(rating, affine),
            active_seconds=DEMO_ACTIVE_SECONDS[name],
        )
        assignment_submit(by=rater, assignment=assignment, revision=revision)
        result.submitted.append(f"{label}/{name}")


def demo_annotations_ensure(
    *,
    study: Study,
    users: Mapping[str, AbstractBaseUser],
    seeds: Mapping[str, int],
    rated_subjects: Iterable[str] = DEMO_RATED_SUBJECTS,
    progress: Callable[[str], None] | None = None,
) -> DemoAnnotations:
    """Assign the demo study's sessions to the demo raters and add the rated sessions' work.

    Parameters
    ----------
    study : the demo study (its sessions and series loaded).
    users : the demo users by username (``admin``, ``rater1`` .. ``rater3``).
    seeds : phantom seed per subject code (also seeds the synthetic raters).
    rated_subjects : subject codes whose sessions get three submitted annotations.
    progress : called with a line of text when something was added.
    """
    result = DemoAnnotations()
    raters = [users[name] for name in DEMO_RATERS]
    result.assignments_created = _assign_missing(study=study, by=users["admin"], raters=raters)
    for code in rated_subjects:
        session = Session.objects.filter(subject__study=study, subject__code=code).select_related("subject").first()
        if session is None:
            continue
        assignments = {
            a.rater.get_username(): a
            for a in Assignment.objects.filter(session=session, rater__in=raters, active=True).select_related(
                "rater", "session__subject__study"
            )
        }
        _rate_session(session=session, assignments=assignments, seed=seeds.get(code, 0), result=result)
    if progress is not None and (result.assignments_created or result.submitted or result.skipped):
        progress(
            f"  assignments: {result.assignments_created} added; annotations submitted: "
            f"{', '.join(result.submitted) or 'none'}"
            + (f"; skipped: {'; '.join(result.skipped)}" if result.skipped else "")
        )
    return result
