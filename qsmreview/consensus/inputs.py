"""What a consensus run reads, decided in one place, with a message for everything missing.

Every function returns the *current* inputs of a session and raises
:class:`~qsmreview.errors.ValidationFailed` naming what is missing (no tissue labels, fewer than
two submitted raters, a series off the T2* grid), so a request is refused at once instead of
failing on a worker.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from qsmreview.annotations.models import Assignment, AssignmentStatus, Revision
from qsmreview.annotations.selectors import current_t2star_magnitude
from qsmreview.errors import ValidationFailed
from qsmreview.studies import nifti
from qsmreview.studies.models import Series, SeriesKind, Session, Space

#: Fewest submitted raters a consensus is computed from.
MIN_RATERS = 2


@dataclass(frozen=True)
class ConsensusInputs:
    """The current inputs of a session's consensus."""

    #: rater username -> their submitted revision, by username.
    revisions: dict[str, Revision]
    tissue: Series
    qsm: Series | None
    brain_mask: Series | None
    grid: Series

    def digest(self) -> str:
        """Equal for two requests that would compute the same thing (the job's dedupe key)."""
        parts = [f"{name}:{r.pk}" for name, r in sorted(self.revisions.items())]
        parts += [f"tissue:{self.tissue.pk}", f"qsm:{self.qsm.pk if self.qsm else 0}"]
        parts.append(f"mask:{self.brain_mask.pk if self.brain_mask else 0}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _current(session: Session, kind: str) -> Series | None:
    """The current series of ``kind`` on the T2* grid; with several labels, the newest."""
    return (
        Series.objects.filter(session=session, kind=kind, space=Space.T2STAR, is_current=True)
        .order_by("-created_at", "-pk")
        .first()
    )


def submitted_revisions(session: Session) -> dict[str, Revision]:
    """The submitted revision of every active assignment of the session, by rater username."""
    rows = (
        Assignment.objects.filter(session=session, active=True, status=AssignmentStatus.SUBMITTED)
        .exclude(submitted_revision=None)
        .select_related("rater", "submitted_revision")
        .order_by("rater__username")
    )
    return {a.rater.get_username(): a.submitted_revision for a in rows}


def all_raters_submitted(session: Session) -> bool:
    """Every active assignment of the session is submitted, and there are at least two."""
    active = Assignment.objects.filter(session=session, active=True)
    total = active.count()
    return total >= MIN_RATERS and not active.exclude(status=AssignmentStatus.SUBMITTED).exists()


def _same_grid(series: Series, grid: Series, what: str) -> None:
    if not nifti.same_grid(series.shape[:3], np.asarray(series.affine), grid.shape[:3], np.asarray(grid.affine)):
        raise ValidationFailed(
            f"{series.session}: the {what} (series {series.pk}) is not on the session's T2* grid "
            f"(series {grid.pk}, {'x'.join(map(str, grid.shape[:3]))}); the consensus needs every input on it"
        )


def consensus_inputs(session: Session) -> ConsensusInputs:
    """The session's current consensus inputs.

    Raises
    ------
    ValidationFailed
        No T2* magnitude (the grid), no tissue labels, fewer than two submitted raters, or an
        input off the T2* grid.
    """
    grid = current_t2star_magnitude(session)
    if grid is None:
        raise ValidationFailed(f"{session}: no T2* magnitude, so no T2* grid to compute the consensus on")
    revisions = submitted_revisions(session)
    if len(revisions) < MIN_RATERS:
        raise ValidationFailed(
            f"{session}: {len(revisions)} rater(s) submitted; the consensus needs at least {MIN_RATERS}"
        )
    tissue = _current(session, SeriesKind.TISSUE)
    if tissue is None:
        raise ValidationFailed(
            f"{session}: no tissue labels (CSF/GM/WM); run tissue classification first"
        )
    _same_grid(tissue, grid, "tissue labels")
    qsm = _current(session, SeriesKind.QSM)
    if qsm is not None:
        _same_grid(qsm, grid, "QSM")
    mask = _current(session, SeriesKind.BRAIN_MASK)
    if mask is not None:
        _same_grid(mask, grid, "brain mask")
    return ConsensusInputs(revisions=revisions, tissue=tissue, qsm=qsm, brain_mask=mask, grid=grid)


def load_revision_mask(revision: Revision) -> np.ndarray:
    """A revision's stored mask as a (X, Y, Z) bool array."""
    with revision.file.open("rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    image = nib.Nifti1Image.from_bytes(raw)
    return np.asanyarray(image.dataobj) != 0
