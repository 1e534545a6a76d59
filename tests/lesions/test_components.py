"""Lesion components on hand-built masks: counts, volumes, centroids and numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from qsmreview.lesions.components import (
    CONNECTIVITY,
    LesionAnchorError,
    label_lesions,
    lesion_table,
    nonzero_box,
    sphere_volume_mm3,
)

#: 0.5 x 0.5 x 1 mm voxels: 0.25 mm^3 each; voxel (i, j, k) is at (0.5 i - 4, 0.5 j - 5, k - 4) mm.
AFFINE = np.array(
    [[0.5, 0.0, 0.0, -4.0], [0.0, 0.5, 0.0, -5.0], [0.0, 0.0, 1.0, -4.0], [0.0, 0.0, 0.0, 1.0]]
)
ISO = np.eye(4)


def table(mask, affine=AFFINE, anchors=(), min_diameter_mm=2.0, next_number=1):
    return lesion_table(
        mask, affine, anchors=list(anchors), min_diameter_mm=min_diameter_mm, next_number=next_number
    )


def empty(shape=(8, 8, 6)) -> np.ndarray:
    return np.zeros(shape, dtype=np.uint8)


def test_it_uses_six_connectivity() -> None:
    assert CONNECTIVITY == 6


def test_it_measures_a_2x2x2_cube_as_eight_voxels_of_a_quarter_cubic_millimetre() -> None:
    mask = empty()
    mask[2:4, 2:4, 1:3] = 1

    (lesion,) = table(mask)

    assert lesion["number"] == 1
    assert lesion["voxels"] == 8
    assert lesion["volume_mm3"] == pytest.approx(8 * 0.25)
    # centroid voxel (2.5, 2.5, 1.5) -> (0.5*2.5 - 4, 0.5*2.5 - 5, 1.5 - 4) mm
    assert lesion["centroid_voxel"] == pytest.approx([2.5, 2.5, 1.5])
    assert lesion["centroid_mm"] == pytest.approx([-2.75, -3.75, -2.5])
    assert lesion["vote"] == "" and lesion["confidence"] is None and lesion["note"] == ""


def test_it_counts_two_cubes_touching_only_at_an_edge_as_two_lesions() -> None:
    mask = empty()
    mask[0:2, 0:2, 0:2] = 1
    mask[2:4, 2:4, 0:2] = 1  # voxel (1,1,k) and (2,2,k) share an edge, no face

    labels, n = label_lesions(mask)
    rows = table(mask)

    assert n == 2
    assert len(np.unique(labels)) == 3
    assert [r["voxels"] for r in rows] == [8, 8]
    assert [r["number"] for r in rows] == [1, 2]


def test_it_counts_two_cubes_sharing_a_face_as_one_lesion() -> None:
    mask = empty()
    mask[0:2, 0:2, 0:2] = 1
    mask[2:4, 0:2, 0:2] = 1

    (lesion,) = table(mask)

    assert lesion["voxels"] == 16


def test_it_does_not_modify_the_mask() -> None:
    mask = empty()
    mask[1, 1, 1] = 3
    before = mask.copy()

    table(mask)

    np.testing.assert_array_equal(mask, before)


def test_it_maps_the_centroid_through_a_flipped_axis_swapping_affine() -> None:
    # x flipped, voxel k along world y with 2 mm, voxel j along world z with 1 mm:
    # world = (-i + 10, 2k - 5, j + 3); |det| = 2 mm^3 per voxel.
    affine = np.array([[-1.0, 0, 0, 10], [0, 0, 2, -5], [0, 1, 0, 3], [0, 0, 0, 1]])
    mask = empty((6, 6, 8))
    mask[2, 3, 3:6] = 1  # a line of 3 voxels along k, centroid voxel (2, 3, 4)

    (lesion,) = table(mask, affine, min_diameter_mm=0.0)

    assert lesion["voxels"] == 3
    assert lesion["volume_mm3"] == pytest.approx(6.0)
    assert lesion["centroid_voxel"] == pytest.approx([2, 3, 4])
    assert lesion["centroid_mm"] == pytest.approx([8.0, 3.0, 6.0])
    assert lesion["anchor_mm"] == pytest.approx([8.0, 3.0, 6.0])  # the middle voxel


def test_it_maps_the_centroid_through_an_oblique_affine() -> None:
    c = s = math.sqrt(0.5)  # 45 degrees about z, 1 mm voxels, origin (1, 2, 3) mm
    affine = np.array([[c, -s, 0, 1], [s, c, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]])
    mask = empty((4, 4, 3))
    mask[0:3, 1, 0] = 1  # voxels (0,1,0), (1,1,0), (2,1,0): centroid (1, 1, 0)

    (lesion,) = table(mask, affine, min_diameter_mm=0.0)

    assert lesion["volume_mm3"] == pytest.approx(3.0)
    assert lesion["centroid_mm"] == pytest.approx([1.0, 2.0 + math.sqrt(2.0), 3.0])


def test_it_flags_lesions_below_the_volume_of_a_sphere_of_the_minimum_diameter() -> None:
    # A 2 mm sphere holds 4/3 * pi * 1^3 = 4.18879 mm^3: 16 quarter-mm^3 voxels (4.0) are below,
    # 17 voxels (4.25) are not.
    assert sphere_volume_mm3(2.0) == pytest.approx(4.18879, abs=1e-5)
    mask = empty((20, 8, 4))
    mask[0:16, 0, 0] = 1
    mask[0:17, 4, 0] = 1

    small, large = table(mask, min_diameter_mm=2.0)

    assert (small["voxels"], small["volume_mm3"], small["below_min_size"]) == (16, 4.0, True)
    assert (large["voxels"], large["volume_mm3"], large["below_min_size"]) == (17, 4.25, False)
    # A 1 mm minimum (0.5236 mm^3) flags neither; 3 mm (14.137 mm^3) flags both.
    assert [r["below_min_size"] for r in table(mask, min_diameter_mm=1.0)] == [False, False]
    assert [r["below_min_size"] for r in table(mask, min_diameter_mm=3.0)] == [True, True]


def test_it_gives_anchored_components_their_numbers_and_votes_and_new_ones_the_next_number() -> None:
    mask = empty()
    mask[0, 0, 0] = 1  # voxel (0,0,0) at (-4, -5, -4) mm
    mask[4, 4, 2] = 1  # voxel (4,4,2) at (-2, -3, -2) mm
    mask[7, 7, 5] = 1  # voxel (7,7,5) at (-0.5, -1.5, 1) mm: no anchor
    anchors = [
        {"number": 7, "anchor_mm": [-4.0, -5.0, -4.0], "vote": "wm", "confidence": 4, "note": "periventricular"},
        # 0.2 mm off the voxel centre: still rounds to voxel (4, 4, 2)
        {"number": 3, "anchor_mm": [-2.1, -2.9, -2.2], "vote": "cortical", "confidence": None, "note": ""},
    ]

    rows = table(mask, anchors=anchors, next_number=5)

    assert [(r["number"], r["vote"], r["confidence"]) for r in rows] == [
        (3, "cortical", None),
        (7, "wm", 4),
        (8, "", None),  # 1 + the largest number in use (7) beats next_number 5
    ]
    assert rows[1]["note"] == "periventricular"
    assert rows[0]["anchor_mm"] == [-2.1, -2.9, -2.2]  # the client's anchor is kept
    assert rows[2]["anchor_mm"] == [-0.5, -1.5, 1.0]  # the voxel itself
    assert [r["number"] for r in table(mask, anchors=anchors, next_number=12)] == [3, 7, 12]


def test_it_numbers_unanchored_lesions_in_label_order() -> None:
    mask = empty()
    mask[0, 0, 0] = 1
    mask[5, 5, 5] = 1

    rows = table(mask, next_number=4)

    assert [(r["number"], r["centroid_voxel"]) for r in rows] == [(4, [0, 0, 0]), (5, [5, 5, 5])]


def test_it_returns_nothing_for_an_empty_mask() -> None:
    assert table(empty(), anchors=[]) == []


def full_volume_labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The reference: scipy's 6-connected labelling of every voxel of the grid."""
    return ndimage.label(mask != 0, structure=ndimage.generate_binary_structure(3, 1), output=np.int32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("density", [0.02, 0.3])
def test_it_labels_like_scipy_on_the_whole_volume(seed, order, density) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 30)), int(rng.integers(5, 30)), int(rng.integers(3, 12)))
    mask = np.zeros(shape, dtype=np.uint8, order=order)
    # A random sub-box with 2 % (specks) or 30 % (branching clusters) of its voxels set: many
    # components of every shape, some on the grid's faces, footprints nested in others' boxes.
    lo = [int(rng.integers(0, s)) for s in shape]
    hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    mask[box] = (rng.random([b - a for a, b in zip(lo, hi)]) < density) * rng.integers(1, 256, 1).astype(np.uint8)

    labels, n = label_lesions(mask)
    expected, expected_n = full_volume_labels(mask)

    assert labels.dtype == np.int32 and labels.shape == shape
    assert n == expected_n
    np.testing.assert_array_equal(labels, expected)


def test_it_labels_an_empty_mask_as_nothing() -> None:
    labels, n = label_lesions(empty())

    assert n == 0 and labels.shape == (8, 8, 6) and not labels.any()
    assert nonzero_box(empty()) is None


def test_it_labels_a_mask_touching_every_face_of_the_grid() -> None:
    mask = empty((7, 9, 5))
    mask[0, 4, 2] = mask[6, 4, 2] = 1  # the two x faces
    mask[3, 0, 2] = mask[3, 8, 2] = 1  # the two y faces
    mask[3, 4, 0] = mask[3, 4, 4] = 1  # the two z faces
    mask[1:6, 4, 2] = 1  # joins the x faces' voxels into one lesion

    labels, n = label_lesions(mask)
    expected, expected_n = full_volume_labels(mask)

    assert (n, expected_n) == (5, 5)
    np.testing.assert_array_equal(labels, expected)
    assert nonzero_box(mask) == (slice(0, 7), slice(0, 9), slice(0, 5))
    assert [r["voxels"] for r in table(mask, ISO, min_diameter_mm=0.0)] == [7, 1, 1, 1, 1]


@pytest.mark.parametrize("order", ["C", "F"])
def test_it_separates_lesions_stacked_or_nested_in_projection(order) -> None:
    mask = np.zeros((12, 12, 10), dtype=np.uint8, order=order)
    mask[2:5, 2:5, 1:3] = 1  # lesion A, first in C order
    mask[2:5, 2:5, 6:8] = 1  # lesion B straight above A: the same footprint in both projections
    mask[6, 1:11, 4] = 1  # lesion C, an L whose box holds lesion D ...
    mask[6:11, 10, 4] = 1
    mask[9, 3, 4] = 1  # ... D, inside C's box, apart from it

    labels, n = label_lesions(mask)
    expected, expected_n = full_volume_labels(mask)

    assert (n, expected_n) == (4, 4)
    np.testing.assert_array_equal(labels, expected)
    anchors = [
        {"number": 11, "anchor_mm": [2.0, 2.0, 7.0]},  # B
        {"number": 12, "anchor_mm": [9.0, 3.0, 4.0]},  # D
        {"number": 13, "anchor_mm": [10.0, 10.0, 4.0]},  # C, at the far end of the L
    ]
    rows = table(mask, ISO, anchors=anchors, min_diameter_mm=0.0, next_number=20)
    assert [(r["number"], r["voxels"]) for r in rows] == [(11, 18), (12, 1), (13, 14), (20, 18)]


@pytest.mark.parametrize("order", ["C", "F"])
def test_it_boxes_the_nonzero_voxels_with_one_voxel_of_margin(order) -> None:
    mask = np.zeros((10, 12, 8), dtype=np.float32, order=order)
    mask[3, 5, 2] = 1
    mask[6, 4, 7] = -2  # non-zero counts, whatever the value; the z margin is clipped at 8

    assert nonzero_box(mask) == (slice(2, 8), slice(3, 7), slice(1, 8))


def test_it_matches_anchors_outside_the_lesions_box_as_not_in_the_mask() -> None:
    mask = empty()
    mask[4, 4, 2] = 1  # box with margin: [3:6, 3:6, 1:4]

    with pytest.raises(LesionAnchorError, match=r"lesion 2: anchor .* \(voxel \[0, 0, 0\]\) is not inside the mask"):
        table(mask, anchors=[{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0]}])


@pytest.mark.parametrize(
    ("anchors", "message"),
    [
        ([{"number": 2, "anchor_mm": [100.0, 0.0, 0.0]}], r"lesion 2: anchor .* is outside the image"),
        ([{"number": 2, "anchor_mm": [-3.0, -4.0, -3.0]}], r"lesion 2: anchor .* is not inside the mask"),
        (
            [{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0]}, {"number": 2, "anchor_mm": [-2.0, -3.0, -2.0]}],
            r"lesion 2 is listed twice",
        ),
        (
            [{"number": 5, "anchor_mm": [-4.0, -5.0, -4.0]}, {"number": 2, "anchor_mm": [-3.5, -5.0, -4.0]}],
            r"lesions 2 and 5 are one connected lesion",
        ),
        ([{"number": 0, "anchor_mm": [-4.0, -5.0, -4.0]}], r"lesion entry 1: number must be"),
        ([{"number": True, "anchor_mm": [-4.0, -5.0, -4.0]}], r"lesion entry 1: number must be"),
        ([{"number": 2, "anchor_mm": [-4.0, -5.0]}], r"lesion 2: anchor_mm must be three finite numbers"),
        ([{"number": 2, "anchor_mm": [10**400, -5.0, -4.0]}], r"lesion 2: anchor_mm must be three finite"),
        ([{"number": 2, "anchor_mm": [1e308, 1e308, -4.0]}], r"lesion 2: anchor .* is outside the image \(far away"),
        ([{"number": 2, "anchor_mm": [-4.0, float("nan"), -4.0]}], r"lesion 2: anchor_mm must be three finite"),
        ([{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0], "vote": "grey"}], r"lesion 2: vote must be one of"),
        ([{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0], "confidence": 6}], r"lesion 2: confidence must be"),
        ([{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0], "note": 3}], r"lesion 2: note must be text"),
        ([{"number": 2, "anchor_mm": [-4.0, -5.0, -4.0], "colour": "red"}], r"lesion 2: unknown field"),
        (["lesion"], r"lesion entry 1 must be an object"),
    ],
)
def test_it_refuses_anchors_it_cannot_match_naming_the_lesion(anchors, message) -> None:
    mask = empty()
    mask[0:2, 0, 0] = 1  # voxels (0,0,0) and (1,0,0): (-4, -5, -4) and (-3.5, -5, -4) mm
    mask[4, 4, 2] = 1

    with pytest.raises(LesionAnchorError, match=message):
        table(mask, anchors=anchors)


def test_it_refuses_a_mask_that_is_not_3d_and_a_singular_affine() -> None:
    with pytest.raises(ValueError, match="3-D"):
        table(np.zeros((4, 4, 4, 2)))
    singular = np.eye(4)
    singular[2, 2] = 0
    with pytest.raises(ValueError, match="singular"):
        table(empty(), singular)
    with pytest.raises(ValueError, match="next_number"):
        table(empty(), next_number=0)
    with pytest.raises(ValueError, match="min_diameter_mm"):
        table(empty(), min_diameter_mm=-1.0)
