"""QC proposals (mask cut, vessels) and pure QC edits."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.qc import exclude_lesions, exclude_rois, mask_cut_fractions, remove_voxels, vessel_proposals


def test_it_gives_the_share_of_each_lesion_outside_the_qsm_mask() -> None:
    labels = np.zeros((6, 6, 6), np.int32)
    labels[1, 1, 0:4] = 1
    labels[4, 4, 2:4] = 2
    mask = np.ones(labels.shape, bool)
    mask[1, 1, 0] = False

    assert mask_cut_fractions(labels, mask) == {1: 0.25, 2: 0.0}


def test_it_proposes_a_bright_tube_as_vessel_but_not_a_lesion_like_blob() -> None:
    shape = (40, 40, 30)
    i, j, k = np.indices(shape)
    qsm = np.zeros(shape, np.float32)
    tube = (i - 17) ** 2 + (j - 20) ** 2 <= 1.5**2  # a vein along the slice axis, radius 1.5 mm
    qsm[tube] = 0.4
    blob = (i - 28) ** 2 + (j - 20) ** 2 + (k - 15) ** 2 <= 3.0**2
    qsm[blob] = 0.05
    labels = blob.astype(np.int32)  # the lesion (slices 12..18); the vein passes 8 voxels from it

    proposed = vessel_proposals(qsm, labels, (1.0, 1.0, 1.0))

    assert proposed[17, 20, 12:19].all()  # the vein's axis on the lesion's slices
    assert not proposed[blob].any()
    # Proposals are computed only where reference ROIs can reach: the lesion's slices.
    assert not proposed[:, :, :12].any() and not proposed[:, :, 19:].any()


def test_it_edits_copies_and_leaves_the_input_unchanged() -> None:
    labels = np.zeros((4, 4, 4), np.int32)
    labels[0, 0, :] = 1
    labels[3, 3, :] = 2
    before = labels.copy()
    drop = np.zeros(labels.shape, bool)
    drop[0, 0, 0] = True

    assert set(np.unique(exclude_lesions(labels, [2]))) == {0, 1}
    assert int((remove_voxels(labels, drop) == 1).sum()) == 3
    np.testing.assert_array_equal(labels, before)
    refs = np.array([0, 11, 12, 21], np.int32).reshape(1, 1, 4)
    assert exclude_rois(refs, [1]).tolist() == [[[0, 0, 0, 21]]]
    with pytest.raises(LesionInputError, match="voxels to remove have shape"):
        remove_voxels(labels, np.zeros((2, 2, 2), bool))
