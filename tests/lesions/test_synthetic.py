"""Synthetic rater annotations (qsmreview.lesions.synthetic): the disagreements hold by construction.

The truth is five balls of known size and class in a 48^3 box, far apart.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from qsmreview.lesions.components import STRUCTURE, label_lesions
from qsmreview.lesions.synthetic import (
    FALSE_POSITIVE_CLEARANCE,
    dice,
    synthetic_ratings,
)

SHAPE = (48, 48, 48)
#: id -> (centre, radius in voxels, class)
BALLS = {
    1: ((10, 10, 10), 3.0, "wm"),
    2: ((10, 36, 12), 2.2, "wm"),  # the smallest non-mixed lesion: A misses it
    3: ((36, 10, 14), 3.5, "cortical"),
    4: ((36, 36, 34), 3.2, "mixed"),  # the disputed one
    5: ((12, 24, 36), 2.0, "mixed"),  # smaller, but mixed: never the missed one
}


def make_truth() -> tuple[np.ndarray, dict[str, str]]:
    grid = np.indices(SHAPE)
    truth = np.zeros(SHAPE, dtype=np.int16)
    for k, (centre, radius, _) in BALLS.items():
        ball = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
        truth[ball] = k
    return truth, {str(k): kind for k, (_, _, kind) in BALLS.items()}


@pytest.fixture(scope="module")
def ratings():
    truth, types = make_truth()
    return truth, synthetic_ratings(truth, types, seed=7)


def overlapped(mask: np.ndarray, truth: np.ndarray) -> set[int]:
    return {int(k) for k in np.unique(truth[mask != 0]) if k}


def test_it_makes_three_raters_masks_on_the_truth_grid(ratings):
    truth, (a, b, c) = ratings

    assert [r.rater for r in (a, b, c)] == ["A", "B", "C"]
    for r in (a, b, c):
        assert r.mask.shape == SHAPE and r.mask.dtype == np.uint8
        assert set(np.unique(r.mask)) <= {0, 1}


def test_rater_a_lacks_exactly_the_smallest_plain_lesion(ratings):
    truth, (a, _, _) = ratings

    assert a.missed == (2,)
    assert overlapped(a.mask, truth) == {1, 3, 4, 5}
    assert a.false_positives == 0


def test_rater_b_has_exactly_one_component_off_the_truth(ratings):
    truth, (_, b, _) = ratings
    labels, n = label_lesions(b.mask)

    off = [k for k in range(1, n + 1) if not (truth[labels == k] != 0).any()]

    assert len(off) == 1 and b.false_positives == 1 and b.missed == ()
    assert overlapped(b.mask, truth) == {1, 2, 3, 4, 5}
    blob = labels == off[0]
    distance = ndimage.distance_transform_edt(truth == 0)
    assert distance[blob].min() >= FALSE_POSITIVE_CLEARANCE
    assert [les.truth_id for les in b.lesions][-1] is None


def test_rater_c_draws_every_lesion_and_nothing_else(ratings):
    truth, (_, _, c) = ratings

    assert c.missed == () and c.false_positives == 0
    assert overlapped(c.mask, truth) == {1, 2, 3, 4, 5}


def test_every_drawn_lesion_is_one_component_over_one_truth_lesion(ratings):
    truth, all_ratings = ratings
    for r in all_ratings:
        labels, n = label_lesions(r.mask)
        assert n == len(r.lesions) == 5 - len(r.missed) + r.false_positives
        for k in range(1, n + 1):
            assert len(overlapped(labels == k, truth)) <= 1


def test_boundaries_move_by_at_most_one_voxel_and_differ_between_raters(ratings):
    truth, all_ratings = ratings
    for r in all_ratings:
        drawn = np.isin(truth, [k for k in BALLS if k not in r.missed])
        labels, _ = ndimage.label(r.mask, structure=STRUCTURE)
        fp = np.zeros(SHAPE, bool)
        for les in r.lesions:
            if les.truth_id is None:
                fp |= labels == labels[les.anchor_voxel]
        changed = (r.mask.astype(bool) & ~fp) ^ drawn
        band = ndimage.binary_dilation(drawn, STRUCTURE) & ~ndimage.binary_erosion(drawn, STRUCTURE)
        assert changed.any(), f"rater {r.rater} drew the truth exactly"
        assert not (changed & ~band).any(), f"rater {r.rater} moved a boundary by more than a voxel"
    a, b, c = all_ratings
    assert not np.array_equal(a.mask, c.mask) and not np.array_equal(b.mask, c.mask)


def test_raters_agree_as_real_raters_do(ratings):
    _, (a, b, c) = ratings

    for x, y in ((a, b), (a, c), (b, c)):
        assert 0.6 <= dice(x.mask, y.mask) <= 0.95, (x.rater, y.rater, dice(x.mask, y.mask))


def test_class_votes_differ_on_the_first_mixed_lesion_only(ratings):
    _, all_ratings = ratings

    votes = {r.rater: {les.truth_id: les.vote for les in r.lesions} for r in all_ratings}

    assert {r: v[4] for r, v in votes.items()} == {"A": "mixed", "B": "cortical", "C": "wm"}
    for r in all_ratings:
        for les in r.lesions:
            if les.truth_id not in (4, None):
                assert les.vote == BALLS[les.truth_id][2]
            assert 1 <= les.confidence <= 5


def test_every_anchor_is_inside_its_lesion(ratings):
    truth, all_ratings = ratings
    for r in all_ratings:
        labels, _ = label_lesions(r.mask)
        anchored = [int(labels[les.anchor_voxel]) for les in r.lesions]
        assert 0 not in anchored and len(set(anchored)) == len(anchored)
        for les in r.lesions:
            if les.truth_id is not None:
                assert overlapped(labels == labels[les.anchor_voxel], truth) == {les.truth_id}


def test_it_is_deterministic_and_leaves_the_truth_alone():
    truth, types = make_truth()
    before = truth.copy()

    first = synthetic_ratings(truth, types, seed=3)
    again = synthetic_ratings(truth, types, seed=3)
    other = synthetic_ratings(truth, types, seed=4)

    assert np.array_equal(truth, before)
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(first, again))
    assert any(not np.array_equal(x.mask, y.mask) for x, y in zip(first, other))


def test_it_puts_the_false_positive_where_allowed():
    truth, types = make_truth()
    allowed = np.zeros(SHAPE, bool)
    allowed[20:30, 14:34, 20:30] = True

    _, b, _ = synthetic_ratings(truth, types, allowed=allowed, seed=1)

    labels, _ = label_lesions(b.mask)
    fp = next(les for les in b.lesions if les.truth_id is None)
    assert allowed[labels == labels[fp.anchor_voxel]].all()


@pytest.mark.parametrize(
    ("truth", "types", "message"),
    [
        (np.zeros(SHAPE, np.int16), {}, "no lesion"),
        (make_truth()[0], {"1": "wm"}, "without a type"),
        (make_truth()[0], {k: "mixed" for k in "12345"}, "two lesions that are not mixed"),
        (np.zeros((4, 4)), {}, "3-D"),
    ],
)
def test_it_refuses_a_truth_it_cannot_rate(truth, types, message):
    with pytest.raises(ValueError, match=message):
        synthetic_ratings(truth, types)
