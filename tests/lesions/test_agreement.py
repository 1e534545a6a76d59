"""Agreement against hand-worked cases: the MSSEG detection rule at its alpha, beta and gamma
edges, the size floor, voxel Dice and Fleiss' kappa."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.lesions.agreement import detection, dice, fleiss_kappa_of_votes, overlap_table, session_agreement
from qsmreview.lesions.params import ConsensusParams

ISO = (1.0, 1.0, 1.0)
NO_FLOOR = ConsensusParams(agreement_min_volume_mm3=0.0)
SHAPE = (24, 20, 3)


def line(x0: int, x1: int, y: int = 5) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    m[x0:x1, y, 1] = 1
    return m


def test_it_scores_identical_masks_as_perfect() -> None:
    a = line(0, 10) | line(15, 20)

    d = detection(a, a, ISO, params=NO_FLOOR)

    assert (d.n_reference, d.n_tested, d.detected, d.tested_true) == (2, 2, 2, 2)
    assert (d.sensitivity, d.ppv, d.f1) == (1.0, 1.0, 1.0)


def test_it_needs_more_than_alpha_of_the_lesion_covered() -> None:
    ref = line(0, 10)  # 10 voxels

    one = detection(ref, line(0, 1), ISO, params=NO_FLOOR)  # 10 %: not more than alpha
    two = detection(ref, line(0, 2), ISO, params=NO_FLOOR)  # 20 %: detected
    four = detection(ref, line(0, 4), ISO, params=NO_FLOOR)

    assert (one.detected, one.sensitivity) == (0, 0.0)
    assert (two.detected, two.sensitivity) == (1, 1.0)
    # Roles swapped (PPV), the reference lesion is the covering one: 8 of its 10 voxels lie
    # outside the 2-voxel tested lesion, 0.8 > beta, so the tested lesion is not a true positive;
    # against 4 tested voxels only 6 / 10 lie outside, and it is.
    assert (two.ppv, two.f1) == (0.0, 0.0)
    assert (four.detected, four.tested_true, four.f1) == (1, 1, 1.0)


def test_it_refuses_a_covering_lesion_more_than_beta_outside_every_reference_lesion() -> None:
    ref = line(0, 10)
    # 3 voxels on the lesion (x 0..2) and 7 outside it (x 0..6 on the row above): 7 / 10 = beta.
    at_beta = line(0, 3) | line(0, 7, y=6)
    # 3 on it and 8 outside: 8 / 11 > 0.7.
    beyond = line(0, 3) | line(0, 8, y=6)

    assert detection(ref, at_beta, ISO, params=NO_FLOOR).detected == 1
    assert detection(ref, beyond, ISO, params=NO_FLOOR).detected == 0


def test_it_checks_the_largest_overlaps_until_they_cover_gamma_of_the_covered_voxels() -> None:
    ref = line(0, 20)
    blob = np.zeros(SHAPE, np.uint8)
    blob[12:17, 6:16, 1] = 1  # 50 voxels off the lesion, joined to its row at x 12..16

    # T1 covers x 0..9 (10 voxels), T2 x 12..17 (6) with the blob: 10 / 16 = 0.625 < gamma, so
    # T2 is checked too, and 50 / 56 of it is outside: not detected.
    short = line(0, 10) | line(12, 18) | blob
    # T1 covers x 0..10 (11), T2 x 13..17 (5) with its blob: 11 / 16 = 0.6875 >= gamma, T2 never
    # checked: detected.
    blob_late = np.zeros(SHAPE, np.uint8)
    blob_late[13:18, 6:16, 1] = 1
    enough = line(0, 11) | line(13, 18) | blob_late

    assert detection(ref, short, ISO, params=NO_FLOOR).detected == 0
    assert detection(ref, enough, ISO, params=NO_FLOOR).detected == 1


def test_it_ignores_lesions_of_at_most_the_minimum_volume() -> None:
    ref = line(0, 3) | line(10, 14)  # 3 mm^3 (dropped at the 3 mm^3 default) and 4 mm^3

    d = detection(ref, ref, ISO)

    assert (d.n_reference, d.n_tested) == (1, 1)
    table = overlap_table(ref, ref, min_voxels=3.0)
    assert table.tolist() == [[SHAPE[0] * SHAPE[1] * SHAPE[2] - 4, 0], [0, 4]]


def test_it_leaves_scores_without_a_denominator_empty() -> None:
    empty = np.zeros(SHAPE, np.uint8)

    d = detection(empty, line(0, 10), ISO)

    assert (d.sensitivity, d.ppv, d.f1) == (None, 0.0, None)


def test_it_measures_voxel_dice() -> None:
    assert dice(line(0, 4), line(2, 6)) == 0.5  # 2 * 2 / (4 + 4)
    assert dice(np.zeros(SHAPE), np.zeros(SHAPE)) is None


def test_it_computes_fleiss_kappa_of_the_class_votes_by_hand() -> None:
    votes = {
        1: {"A": "wm", "B": "wm", "C": "wm"},
        2: {"A": "cortical", "B": "cortical", "C": "cortical"},
        3: {"A": "wm", "B": "wm", "C": "cortical"},
        4: {"A": "mixed", "B": "mixed", "C": "wm"},
        5: {"A": "wm", "B": "mixed"},  # C did not vote: left out
    }
    # P_i = (sum n_ij^2 - 3) / 6: 1, 1, 1/3, 1/3 -> mean 2/3. Shares of 12 votes: wm 1/2,
    # cortical 1/3, mixed 1/6 -> P_e = 1/4 + 1/9 + 1/36 = 7/18. kappa = (2/3 - 7/18) / (11/18) = 5/11.

    k = fleiss_kappa_of_votes(votes, ["A", "B", "C"])

    assert k["kappa"] == pytest.approx(5 / 11)
    assert (k["n_lesions"], k["n_raters"]) == (4, 3)


def test_it_leaves_kappa_empty_when_every_vote_is_the_same_class_or_too_few_lesions() -> None:
    same = {1: {"A": "wm", "B": "wm"}, 2: {"A": "wm", "B": "wm"}}

    assert fleiss_kappa_of_votes(same, ["A", "B"])["kappa"] is None
    assert fleiss_kappa_of_votes({1: {"A": "wm", "B": "mixed"}}, ["A", "B"])["kappa"] is None


def test_it_reports_pairs_and_each_rater_against_the_consensus_with_their_parameters() -> None:
    a, b, c = line(0, 10), line(0, 10) | line(15, 20), line(2, 10)
    consensus = line(0, 10)

    result = session_agreement({"A": a, "B": b, "C": c}, consensus, (0.5, 0.5, 1.0), params=NO_FLOOR)

    assert result["parameters"] == {
        "alpha": 0.1, "beta": 0.7, "gamma": 0.65, "min_volume_mm3": 0.0, "connectivity": 6,
        "voxel_size_mm": [0.5, 0.5, 1.0],
    }
    assert [(p["reference"], p["tested"]) for p in result["pairs"]] == [("A", "B"), ("A", "C"), ("B", "C")]
    ab = result["pairs"][0]
    # A's one lesion is detected by B (sens 1); of B's two, one lies in A (PPV 1/2): F1 2/3.
    assert (ab["sensitivity"], ab["ppv"]) == (1.0, 0.5) and ab["f1"] == pytest.approx(2 / 3)
    assert ab["dice"] == pytest.approx(2 * 10 / 25)
    assert [v["tested"] for v in result["vs_consensus"]] == ["A", "B", "C"]
    assert result["vs_consensus"][0]["f1"] == 1.0
