"""Reference ROIs on hand-built slabs: central slice, tissue, distance, gap, exclusions and flags,
checked against brute-force distances (every lesion voxel against every ROI voxel)."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.lesions.classify import classify_lesions
from qsmreview.lesions.params import ConsensusParams
from qsmreview.lesions.reference import central_slice, reference_rois, roi_id, roi_parts

CSF, GM, WM = 1, 2, 3
SHAPE = (40, 40, 7)


def min_distance(points: np.ndarray, lesion: np.ndarray, *, in_plane: bool = False) -> np.ndarray:
    """Brute force: each point's Euclidean distance (voxels) to the nearest lesion voxel."""
    cols = slice(0, 2) if in_plane else slice(0, 3)
    diff = points[:, None, cols].astype(float) - lesion[None, :, cols].astype(float)
    return np.sqrt((diff**2).sum(axis=-1)).min(axis=1)


def wm_lesion() -> tuple[np.ndarray, np.ndarray]:
    """White matter everywhere; lesion 1 is 1 voxel on slice 2, 3x3 on slice 3, 2x2 on slice 4."""
    labels = np.zeros(SHAPE, np.int32)
    labels[20, 20, 2] = 1
    labels[19:22, 19:22, 3] = 1
    labels[19:21, 19:21, 4] = 1
    return labels, np.full(SHAPE, WM, np.uint8)


def rois(labels, tissue, **kw):
    return reference_rois(labels, tissue, classify_lesions(labels, tissue), **kw)


def test_it_encodes_roi_ids_as_ten_times_the_lesion_plus_the_portion() -> None:
    assert (roi_id(7, "wm"), roi_id(7, "cortical")) == (71, 72)
    assert roi_parts(72) == (7, "cortical")
    with pytest.raises(ValueError):
        roi_parts(73)


def test_it_takes_the_slice_with_the_largest_cross_section() -> None:
    labels, _ = wm_lesion()
    assert central_slice(labels == 1) == 3
    tie = np.zeros((3, 3, 5), bool)
    tie[1, 1, 0:4] = True  # four equal slices 0..3, centroid 1.5: slices 1 and 2 tie, the lower wins
    assert central_slice(tie, 10) == 11


def test_it_makes_a_white_matter_donut_on_the_central_slice_within_reach_outside_the_gap() -> None:
    labels, tissue = wm_lesion()

    ref = rois(labels, tissue)

    roi = np.argwhere(ref.labels == 11)
    lesion = np.argwhere(labels == 1)
    assert set(roi[:, 2]) == {3}
    in_plane = min_distance(roi, lesion[lesion[:, 2] == 3], in_plane=True)
    assert in_plane.max() <= 10 and min_distance(roi, lesion).min() > 2
    # Complete: every voxel of the slice with 2 < distance <= 10 (in-plane to the 3x3 section;
    # the slices above and below lie within that section) is in it.
    grid = np.argwhere(np.ones(SHAPE[:2], bool))
    grid = np.column_stack([grid, np.full(len(grid), 3)])
    d_plane = min_distance(grid, lesion[lesion[:, 2] == 3], in_plane=True)
    d_3d = min_distance(grid, lesion)
    expected = int(((d_plane <= 10) & (d_3d > 2)).sum())
    assert len(roi) == expected == ref.info[11]["n_voxels"]
    assert ref.info[11] == {"lesion": 1, "portion": "wm", "central_slice": 3, "n_voxels": expected, "flag": ""}


def test_it_keeps_out_other_lesions_rater_marks_with_their_gap_other_tissue_and_outside_the_qsm_mask() -> None:
    labels, tissue = wm_lesion()
    tissue[:, 30:, :] = CSF  # rows y >= 30 are not white matter
    marked = np.zeros(SHAPE, bool)
    marked[12, 20, 4] = True  # one rater's mark, one slice above the central slice
    qsm_mask = np.ones(SHAPE, bool)
    qsm_mask[:15, :, :] = False

    ref = rois(labels, tissue, marked=marked, qsm_mask=qsm_mask)

    roi = np.argwhere(ref.labels == 11)
    assert (tissue[ref.labels == 11] == WM).all()
    assert qsm_mask[ref.labels == 11].all()
    assert min_distance(roi, np.argwhere(marked)).min() > 2
    assert min_distance(roi, np.argwhere(labels > 0)).min() > 2
    assert not (ref.labels > 0)[labels > 0].any()


def test_it_gives_each_voxel_to_the_nearer_of_two_lesions() -> None:
    labels = np.zeros(SHAPE, np.int32)
    labels[10:13, 19:22, 3] = 1
    labels[27:30, 19:22, 3] = 2
    tissue = np.full(SHAPE, WM, np.uint8)

    ref = rois(labels, tissue)

    for rid, lesion, other in ((11, 1, 2), (21, 2, 1)):
        roi = np.argwhere(ref.labels == rid)
        mine = min_distance(roi, np.argwhere(labels == lesion))
        theirs = min_distance(roi, np.argwhere(labels == other))
        assert (mine <= theirs).all()
    assert np.count_nonzero(ref.labels == 11) == np.count_nonzero(ref.labels == 21)  # mirror images


def test_it_takes_adjacent_cortex_only_for_a_cortical_lesion() -> None:
    # A cortical ribbon along x at y 10..13 on every slice; a deep grey nucleus (GM too) at
    # y 18..20, within 10 voxels of the lesion but not connected to the ribbon; WM elsewhere.
    tissue = np.full(SHAPE, WM, np.uint8)
    tissue[:, 10:14, :] = GM
    tissue[18:23, 18:21, :] = GM
    labels = np.zeros(SHAPE, np.int32)
    labels[19:22, 10:14, 3] = 1

    ref = rois(labels, tissue)

    assert set(ref.info) == {12}
    roi = np.argwhere(ref.labels == 12)
    assert (roi[:, 1] >= 10).all() and (roi[:, 1] <= 13).all()  # the ribbon only
    assert (roi[:, 0] < 19).any() and (roi[:, 0] > 21).any()  # on both sides of the lesion
    # The ribbon on slice 3 at 2 < |dx| <= 10 from x 19..21: x 9..16 and 24..31, 4 rows each.
    assert len(roi) == 2 * 8 * 4 and ref.info[12]["flag"] == ""


def test_it_splits_a_mixed_lesion_into_references_in_each_tissue() -> None:
    tissue = np.full(SHAPE, WM, np.uint8)
    tissue[:, 20:, :] = GM
    labels = np.zeros(SHAPE, np.int32)
    labels[18:23, 18:22, 3] = 1  # y 18, 19 in WM, y 20, 21 in GM: fraction 0.5

    ref = rois(labels, tissue)

    assert set(ref.info) == {11, 12}
    assert (tissue[ref.labels == 11] == WM).all() and (tissue[ref.labels == 12] == GM).all()


def test_it_flags_a_reference_below_the_minimum_size() -> None:
    tissue = np.full(SHAPE, CSF, np.uint8)
    tissue[14:27, 20, :] = WM  # a one-voxel-wide strip of WM
    labels = np.zeros(SHAPE, np.int32)
    labels[19:22, 20, 3] = 1

    ref = rois(labels, tissue)
    loose = rois(labels, tissue, params=ConsensusParams(reference_min_voxels=4))

    # strip voxels x 14..26 minus the lesion (19..21) and its gap (17, 18, 22, 23): x 14..16, 24..26
    assert ref.info[11]["n_voxels"] == 6 and ref.info[11]["flag"] == "small"
    assert loose.info[11]["flag"] == ""


def test_it_flags_an_empty_reference() -> None:
    tissue = np.full(SHAPE, CSF, np.uint8)
    labels = np.zeros(SHAPE, np.int32)
    labels[19:22, 20, 3] = 1
    tissue[19:22, 20, 3] = WM

    ref = rois(labels, tissue)

    assert ref.info[11]["n_voxels"] == 0 and ref.info[11]["flag"] == "empty"


def test_it_falls_back_to_all_cortex_in_reach_and_flags_it_when_none_is_adjacent() -> None:
    tissue = np.full(SHAPE, WM, np.uint8)
    tissue[19:22, 19:22, :] = GM  # the lesion's own patch of cortex
    tissue[28:31, 19:22, :] = GM  # cortex 7 voxels away, not connected to the lesion's ring
    labels = np.zeros(SHAPE, np.int32)
    labels[19:22, 19:22, 3] = 1

    ref = rois(labels, tissue)

    assert ref.info[12]["flag"] == "small,not_adjacent"
    assert set(map(tuple, np.argwhere(ref.labels == 12)[:, :2])) == {(x, y) for x in range(28, 31) for y in range(19, 22)}
