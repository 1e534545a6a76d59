"""Voxel maps of QC: applying the voxel-edit decisions to a run's label maps, and storing the
run's vessel proposals.

Kept apart from :mod:`qsmreview.consensus.services` (which calls both) so that the voxel edits and
the vessel map have one home; the services that create the decisions are in
:mod:`qsmreview.consensus.qc_edits`.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.core.files import File

from qsmreview.consensus.models import ConsensusDecision, ConsensusRun, DecisionKind
from qsmreview.studies.storage import sha256_of_path

#: Decision kinds that edit the label maps (and so need a new measurement by the core).
VOXEL_EDIT_KINDS = (DecisionKind.REMOVE_VOXELS, DecisionKind.ADD_VOXELS)


def apply_voxel_edits(decisions: Iterable[ConsensusDecision], lesions: np.ndarray, reference: np.ndarray) -> bool:
    """Apply the voxel edits among ``decisions``, in order, to the label maps (modified in place).

    ``remove_voxels`` on a lesion clears the named voxels that still hold that lesion's id; on the
    reference ROIs it clears the named voxels of any ROI. ``add_voxels`` (reference ROIs only) sets
    the named voxels to its ROI id (checked against the ROI rules when decided,
    :func:`qsmreview.lesions.qc.add_reference_voxels`), except voxels that are lesion again because
    an earlier removal was reverted since.

    Returns
    -------
    bool
        Whether any edit was applied (the maps then need measuring again).
    """
    changed = False
    for d in decisions:
        if d.kind not in VOXEL_EDIT_KINDS:
            continue
        ijk = np.asarray(d.value.get("voxels") or [], dtype=np.int64).reshape(-1, 3)
        i, j, k = ijk[:, 0], ijk[:, 1], ijk[:, 2]
        if d.kind == DecisionKind.ADD_VOXELS:
            # Checked against the ROI rules when decided; a lesion voxel restored since (a removal
            # reverted) keeps its place: a voxel is never in a lesion and an ROI at once.
            free = lesions[i, j, k] == 0
            reference[i[free], j[free], k[free]] = int(d.value["roi"])
        elif d.value.get("target") == "lesion":
            hit = lesions[i, j, k] == d.lesion
            lesions[i[hit], j[hit], k[hit]] = 0
        else:
            hit = reference[i, j, k] != 0
            reference[i[hit], j[hit], k[hit]] = 0
        changed = True
    return changed


def store_vessel_proposals(run: ConsensusRun, proposals: Any, affine: np.ndarray, stored: list[str]) -> None:
    """Store a run's vessel proposals (bool, T2* grid) as a uint8 NIfTI and record it on the run.

    Called inside the transaction that creates the run (store-then-commit: the file name goes to
    ``stored`` so the caller deletes it if the transaction fails; the orphan sweep covers a crash).
    Nothing is stored when ``proposals`` is None (a run without QSM).
    """
    if proposals is None:
        return
    data = np.asarray(proposals, dtype=bool).astype(np.uint8)
    image = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    with tempfile.TemporaryDirectory(prefix="qsmreview-consensus-") as tmp:
        local = Path(tmp) / "vessels.nii.gz"
        nib.save(image, str(local))
        sha256, size = sha256_of_path(local)
        with open(local, "rb") as fh:
            run.vessel_proposals.save(f"vessel-proposals_{uuid.uuid4().hex[:12]}.nii.gz", File(fh), save=False)
    stored.append(run.vessel_proposals.name)
    run.vessel_proposals_sha256 = sha256
    run.vessel_proposals_size = size
    run.save(update_fields=["vessel_proposals", "vessel_proposals_sha256", "vessel_proposals_size"])
