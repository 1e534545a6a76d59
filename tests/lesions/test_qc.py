"""QC proposals (mask cut, vessels) and pure QC edits."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.qc import (
    add_reference_voxels,
    exclude_lesions,
    exclude_rois,
    mask_cut_fractions,
    remove_voxels,
    vessel_proposals,
)


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


# --- adding voxels to a reference ROI --------------------------------------------------------


def _roi_world() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 12 x 12 x 3 slab: WM (3) everywhere but a GM (2) column x >= 10; lesion 1 at (3, 3, 1);
    its WM ROI 11 holds (8, 3, 1), lesion 2's ROI 21 holds (8, 8, 1)."""
    tissue = np.full((12, 12, 3), 3, np.uint8)
    tissue[10:] = 2
    lesions = np.zeros(tissue.shape, np.int32)
    lesions[3, 3, 1] = 1
    refs = np.zeros(tissue.shape, np.int16)
    refs[8, 3, 1] = 11
    refs[8, 8, 1] = 21
    return tissue, lesions, refs


def _sel(*ijk: tuple[int, int, int]) -> np.ndarray:
    sel = np.zeros((12, 12, 3), bool)
    for v in ijk:
        sel[v] = True
    return sel


def test_it_adds_allowed_voxels_to_a_reference_roi_and_ignores_ones_already_in_it() -> None:
    tissue, lesions, refs = _roi_world()
    out = add_reference_voxels(refs, _sel((7, 3, 1), (8, 3, 1), (6, 0, 0)), roi=11, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)

    # (6, 0, 0) is sqrt(9 + 9 + 1) = 4.4 voxels from the lesion; (7, 3, 1) 4 voxels.
    assert np.count_nonzero(out == 11) == 3
    assert out[7, 3, 1] == 11 and out[6, 0, 0] == 11
    assert out.dtype == refs.dtype
    assert np.count_nonzero(refs == 11) == 1  # input untouched


@pytest.mark.parametrize(
    ("voxel", "message"),
    [
        ((10, 5, 1), "1 voxel(s) are not white matter (FAST 3), the tissue of ROI 11 (first [10, 5, 1])"),
        ((3, 3, 1), "1 voxel(s) are inside a consensus lesion (first [3, 3, 1])"),
        ((5, 3, 1), "1 voxel(s) are within the 2-voxel gap around a consensus lesion (first [5, 3, 1])"),
        ((4, 4, 2), "1 voxel(s) are within the 2-voxel gap around a consensus lesion (first [4, 4, 2])"),
        ((8, 8, 1), "1 voxel(s) belong to another reference ROI (first [8, 8, 1])"),
    ],
)
def test_it_refuses_voxels_the_roi_rules_forbid(voxel, message) -> None:
    tissue, lesions, refs = _roi_world()
    with pytest.raises(LesionInputError) as exc:
        add_reference_voxels(refs, _sel(voxel, (7, 3, 1)), roi=11, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)
    assert str(exc.value) == message + "; nothing was added to ROI 11"


def test_it_checks_grey_matter_for_a_cortical_roi_and_refuses_a_non_roi_id() -> None:
    tissue, lesions, refs = _roi_world()
    out = add_reference_voxels(refs, _sel((11, 3, 1)), roi=12, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)
    assert out[11, 3, 1] == 12
    with pytest.raises(LesionInputError, match="not white matter"):
        add_reference_voxels(refs, _sel((11, 3, 1)), roi=11, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)
    with pytest.raises(LesionInputError, match="13 is not a reference ROI id"):
        add_reference_voxels(refs, _sel((7, 3, 1)), roi=13, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)
    with pytest.raises(LesionInputError, match="already in reference ROI 11: nothing to add"):
        add_reference_voxels(refs, _sel((8, 3, 1)), roi=11, lesion_labels=lesions, tissue=tissue, gap_vox=2.0)
