"""QC edits of the viewer: voxels drawn on the T2* grid removed from a lesion or the reference
ROIs, voxels added to a reference ROI, and a lesion's proposed vessel voxels removed on request.

Each is an audited, reversible :class:`~qsmreview.consensus.models.ConsensusDecision` made through
the same path as every other decision (:func:`qsmreview.consensus.services._decide`: a new
measurement set measured again by the core); a ``revert`` undoes it. Vessel proposals are never
applied by themselves: :func:`consensus_apply_vessel_proposals` is an admin's explicit removal.

A drawn mask arrives as NIfTI bytes on the T2* grid (the viewer's ``saveImage`` output, which
NiiVue maps back to the file's voxel order), checked like a rater's mask
(:func:`qsmreview.annotations.masks.validate_mask`: shape, affine within 1e-3 mm, values).
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from qsmreview.access import Actor
from qsmreview.consensus import compute
from qsmreview.consensus.models import ConsensusDecision, ConsensusRun, DecisionKind, MeasurementSet
from qsmreview.consensus.services import (
    MAX_REMOVED_VOXELS,
    _base_set,
    _decide,
    _lesion,
    _reason,
    _require_admin,
    _succeeded,
    consensus_remove_voxels,
    load_labels,
    load_labels_and_affine,
)
from qsmreview.errors import Gone, ValidationFailed

#: What a drawn mask does.
OPERATIONS = ("remove", "add")


def current_set(run: ConsensusRun) -> MeasurementSet:
    """The run's current measurement set (set 1 when none is marked current)."""
    return run.measurement_sets.filter(current=True).first() or _base_set(run)


def load_vessel_proposals(run: ConsensusRun) -> np.ndarray | None:
    """The run's stored vessel proposals as a bool array, or None when it has none."""
    if not run.vessel_proposals:
        return None
    return load_labels(run.vessel_proposals) > 0


def _voxels(mask: np.ndarray) -> list[list[int]]:
    return [[int(c) for c in v] for v in np.argwhere(mask)]


def mask_on_grid(run: ConsensusRun, mask_bytes: bytes) -> np.ndarray:
    """A drawn mask (NIfTI bytes, gzip or not) as a bool array on the run's T2* grid.

    Raises
    ------
    ValidationFailed
        (field ``mask``) not a NIfTI file, another shape or affine than the run's label maps,
        values that are not 0..255 whole numbers, no voxel set, more than MAX_REMOVED_VOXELS set.
    """
    from qsmreview.annotations.masks import validate_mask

    labels, affine = load_labels_and_affine(_base_set(run).lesion_labels)
    canonical = validate_mask(mask_bytes, shape=labels.shape, affine=affine)
    mask = np.asarray(canonical.data) > 0
    n = int(np.count_nonzero(mask))
    if n == 0:
        raise ValidationFailed("the drawn mask is empty: draw over the voxels first", field="mask")
    if n > MAX_REMOVED_VOXELS:
        raise ValidationFailed(f"the drawn mask has {n} voxels; at most {MAX_REMOVED_VOXELS} at once", field="mask")
    return mask


def consensus_add_reference_voxels(
    *, by: Actor, run: ConsensusRun, roi: int, voxels: np.ndarray, reason: str
) -> ConsensusDecision:
    """Add voxels (bool, T2* grid) to a reference ROI (QC; the study's admins). Reversible.

    Only voxels the ROI rules allow are accepted
    (:func:`qsmreview.lesions.qc.add_reference_voxels`: the ROI's tissue, outside every current
    consensus lesion and its gap of ``reference_gap_vox`` voxels, in no other ROI); voxels already
    in the ROI are ignored.

    Raises
    ------
    NotFound / Forbidden
        Not visible (raters, outsiders) / not an admin (PI).
    ValidationFailed
        No reason, an unknown lesion, an ROI the lesion does not have now (no such portion), a rule
        broken (the message names it), nothing to add.
    Gone
        The run's tissue labels were deleted.
    """
    from qsmreview.lesions.errors import LesionInputError
    from qsmreview.lesions.params import ConsensusParams
    from qsmreview.lesions.qc import add_reference_voxels

    _require_admin(by, run, "edit lesions and reference ROIs")
    _succeeded(run)
    text = _reason(reason, what="add voxels to a reference ROI")
    roi = int(roi)
    if roi % 10 not in (1, 2) or roi < 11:
        raise ValidationFailed(f"{roi} is not a reference ROI id (10 x lesion + 1 for WM, + 2 for cortical)", field="roi")
    _lesion(run, roi // 10)
    current = current_set(run)
    rois = sorted(
        10 * row.lesion + (1 if row.portion == "wm" else 2) for row in current.rows.filter(lesion=roi // 10)
    )
    if roi not in rois:
        raise ValidationFailed(
            f"lesion {roi // 10} has no {'WM' if roi % 10 == 1 else 'cortical'} portion now: its reference "
            f"ROI{'s are' if len(rois) != 1 else ' is'} {', '.join(map(str, rois)) or 'none'}",
            field="roi",
        )
    if run.tissue_series is None:
        raise Gone(f"the tissue labels of consensus run {run.pk} were deleted; compute a new consensus")
    lesions = load_labels(current.lesion_labels)
    reference = load_labels(current.reference_labels)
    tissue, _ = compute.load_volume(run.tissue_series)
    gap = float(run.params.get("reference_gap_vox", ConsensusParams().reference_gap_vox))
    try:
        added = add_reference_voxels(
            reference, voxels, roi=roi, lesion_labels=lesions, tissue=np.asarray(tissue), gap_vox=gap
        )
    except LesionInputError as exc:
        raise ValidationFailed(str(exc), field="voxels") from exc
    new = (added == roi) & (reference != roi)
    decision, _ = _decide(
        run,
        by,
        kind=DecisionKind.ADD_VOXELS,
        lesion=roi // 10,
        value={"target": "reference", "roi": roi, "voxels": _voxels(new)},
        reason=text,
    )
    return decision


def consensus_edit_voxels(
    *,
    by: Actor,
    run: ConsensusRun,
    operation: str,
    target: str,
    mask_bytes: bytes,
    reason: str,
    lesion: int | None = None,
    roi: int | None = None,
) -> ConsensusDecision:
    """A drawn mask applied as one QC edit (the viewer's tools; the study's admins).

    ``operation="remove"``: the mask's voxels that are in lesion ``lesion`` (``target="lesion"``)
    or in any reference ROI (``target="reference"``) are removed
    (:func:`~qsmreview.consensus.services.consensus_remove_voxels`; only those voxels are
    recorded). ``operation="add"``: the mask's voxels are added to reference ROI ``roi``
    (:func:`consensus_add_reference_voxels`).

    Access is checked before the mask is read. Raises as those two, and ValidationFailed (field
    ``mask``) for a mask that is not on the grid (:func:`mask_on_grid`).
    """
    _require_admin(by, run, "edit lesions and reference ROIs")
    _succeeded(run)
    _reason(reason, what="edit voxels")
    if operation not in OPERATIONS:
        raise ValidationFailed("operation must be remove or add", field="operation")
    if operation == "add":
        if target != "reference":
            raise ValidationFailed("voxels can be added to a reference ROI only (target reference)", field="target")
        if roi is None:
            raise ValidationFailed("name the reference ROI to add voxels to", field="roi")
        return consensus_add_reference_voxels(by=by, run=run, roi=roi, voxels=mask_on_grid(run, mask_bytes), reason=reason)
    if target not in ("lesion", "reference"):
        raise ValidationFailed("target must be lesion or reference", field="target")
    if target == "lesion":
        if lesion is None:
            raise ValidationFailed("name the lesion to remove voxels from", field="lesion")
        _lesion(run, lesion)
    mask = mask_on_grid(run, mask_bytes)
    current = current_set(run)
    if target == "lesion":
        hit = mask & (load_labels(current.lesion_labels) == lesion)
        where = f"lesion {lesion}"
    else:
        hit = mask & (load_labels(current.reference_labels) != 0)
        where = "any reference ROI"
    if not hit.any():
        raise ValidationFailed(f"none of the drawn voxels is in {where} now: nothing to remove", field="mask")
    return consensus_remove_voxels(by=by, run=run, target=target, voxels=_voxels(hit), reason=reason, lesion=lesion)


def consensus_apply_vessel_proposals(
    *, by: Actor, run: ConsensusRun, lesion: int, target: str, reason: str
) -> ConsensusDecision:
    """Remove the run's proposed vessel voxels that lie in lesion ``lesion`` (``target="lesion"``)
    or in its reference ROIs (``target="reference"``), now: an explicit, audited, reversible
    removal (QC; the study's admins). Proposals are never applied otherwise.

    Raises
    ------
    ValidationFailed
        No reason, unknown lesion, the run has no vessel proposals, none lies there.
    """
    _require_admin(by, run, "edit lesions and reference ROIs")
    _succeeded(run)
    _reason(reason, what="remove proposed vessel voxels")
    if target not in ("lesion", "reference"):
        raise ValidationFailed("target must be lesion or reference", field="target")
    _lesion(run, lesion)
    proposals = load_vessel_proposals(run)
    if proposals is None:
        raise ValidationFailed(f"consensus run {run.pk} has no vessel proposals (it had no QSM)")
    current = current_set(run)
    if target == "lesion":
        hit = proposals & (load_labels(current.lesion_labels) == lesion)
        where = f"lesion {lesion}"
    else:
        hit = proposals & (load_labels(current.reference_labels) // 10 == lesion)
        where = f"the reference ROIs of lesion {lesion}"
    if not hit.any():
        raise ValidationFailed(f"no proposed vessel voxel lies in {where} now: nothing to remove", field="lesion")
    return consensus_remove_voxels(
        by=by,
        run=run,
        target=target,
        voxels=_voxels(hit),
        reason=reason,
        lesion=lesion if target == "lesion" else None,
    )


def decode_mask(text: str) -> bytes:
    """The ``mask`` field of the voxel-edit API (base64 of the NIfTI bytes) as bytes.

    Raises
    ------
    ValidationFailed
        Not base64.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("mask must be the NIfTI file's bytes in base64", field="mask") from exc
    return raw
