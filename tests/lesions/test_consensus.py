"""Consensus of three raters on hand-built masks (1 mm voxels unless said): statuses, voxels,
raters and votes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.lesions.consensus import build_consensus, component_votes
from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams

SHAPE = (16, 12, 10)
ISO = (1.0, 1.0, 1.0)


def blank() -> np.ndarray:
    return np.zeros(SHAPE, dtype=np.uint8)


def three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    return {"A": a, "B": b, "C": c}


def test_it_rejects_a_lesion_marked_by_one_rater_of_three() -> None:
    a, b, c = blank(), blank(), blank()
    for m in (a, b, c):
        m[1:4, 1:4, 1:4] = 1  # 27 voxels, all three raters
    a[10:13, 6:9, 5:8] = 1  # A alone

    cons = build_consensus(three(a, b, c), ISO)

    first, second = cons.candidates
    assert (first["status"], first["lesion"], first["raters"], first["consensus_voxels"]) == ("lesion", 1, ["A", "B", "C"], 27)
    assert (second["status"], second["lesion"], second["raters"], second["consensus_voxels"]) == ("rejected", None, ["A"], 0)
    assert cons.n_lesions == 1
    assert int((cons.lesion_labels == 1).sum()) == 27 and int(cons.lesion_labels.max()) == 1


def test_it_joins_touching_lesions_of_different_raters_into_one_candidate_of_majority_voxels() -> None:
    a, b, c = blank(), blank(), blank()
    a[2:5, 2:5, 2:5] = 1  # x 2..4
    b[5:8, 2:5, 2:5] = 1  # x 5..7: touches A's by a face
    c[3:7, 2:5, 2:5] = 1  # x 3..6
    # votes per x: 2 -> A; 3, 4 -> A, C; 5, 6 -> B, C; 7 -> B. Majority (2): x 3..6, 4 * 9 voxels.

    cons = build_consensus(three(a, b, c), ISO)

    (only,) = cons.candidates
    assert only["status"] == "lesion" and only["raters"] == ["A", "B", "C"]
    assert only["union_voxels"] == 6 * 9 and only["consensus_voxels"] == 36
    expected = np.zeros(SHAPE, bool)
    expected[3:7, 2:5, 2:5] = True
    np.testing.assert_array_equal(cons.lesion_labels == 1, expected)
    assert only["centroid_ijk"] == pytest.approx([4.5, 3.0, 3.0])


def test_it_keeps_lesions_touching_only_at_an_edge_apart() -> None:
    a, b, c = blank(), blank(), blank()
    for m in (a, b, c):
        m[1:4, 1:4, 1:4] = 1
        m[4:7, 4:7, 1:4] = 1  # shares only an edge (x 3|4, y 3|4) with the first

    cons = build_consensus(three(a, b, c), ISO)

    assert [c["status"] for c in cons.candidates] == ["lesion", "lesion"]


def test_it_sends_a_lesion_with_no_majority_voxel_to_adjudication() -> None:
    a, b, c = blank(), blank(), blank()
    a[2:4, 2:5, 2:5] = 1  # x 2, 3
    b[4:6, 2:5, 2:5] = 1  # x 4, 5: one candidate, marked by 2 of 3, no voxel by 2

    cons = build_consensus(three(a, b, c), ISO)

    (only,) = cons.candidates
    assert (only["status"], only["lesion"], only["raters"], only["consensus_voxels"]) == ("adjudication", None, ["A", "B"], 0)
    assert not cons.lesion_labels.any()


def test_it_lists_a_lesion_below_the_minimum_size_without_counting_it() -> None:
    # A 2 mm sphere holds 4.18879 mm^3: 4 voxels of 1 mm^3 are below, 5 are not.
    a, b, c = blank(), blank(), blank()
    for m in (a, b, c):
        m[1, 1, 1:5] = 1
        m[8, 8, 1:6] = 1

    cons = build_consensus(three(a, b, c), ISO)

    small, counted = cons.candidates
    assert (small["status"], small["lesion"], small["volume_mm3"]) == ("too_small", None, 4.0)
    assert (counted["status"], counted["lesion"], counted["volume_mm3"]) == ("lesion", 1, 5.0)
    assert not cons.lesion_labels[1, 1].any()


def test_it_keeps_majority_voxels_split_in_two_pieces_as_one_lesion() -> None:
    a, b, c = blank(), blank(), blank()
    a[0:7, 2, 2] = 1
    b[0:2, 2, 2] = 1
    c[5:7, 2, 2] = 1  # majority: x 0, 1 (A, B) and x 5, 6 (A, C); x 2..4 A alone

    cons = build_consensus(three(a, b, c), (2.0, 2.0, 2.0))  # 8 mm^3 voxels: 32 mm^3

    (only,) = cons.candidates
    assert (only["status"], only["consensus_voxels"], only["n_pieces"]) == ("lesion", 4, 2)
    assert sorted(np.argwhere(cons.lesion_labels == 1)[:, 0].tolist()) == [0, 1, 5, 6]


def test_it_asks_every_rater_for_every_voxel_with_a_majority_of_three() -> None:
    a, b, c = blank(), blank(), blank()
    a[1:4, 1:4, 1:4] = 1
    b[1:4, 1:4, 1:4] = 1
    c[2:4, 1:4, 1:4] = 1

    cons = build_consensus(three(a, b, c), ISO, params=ConsensusParams(majority=3))

    assert cons.majority == 3
    assert cons.candidates[0]["consensus_voxels"] == 18


def test_it_gives_each_candidate_the_votes_anchored_in_it() -> None:
    a, b, c = blank(), blank(), blank()
    a[2:5, 2:5, 2:5] = 1
    b[5:8, 2:5, 2:5] = 1
    c[3:7, 2:5, 2:5] = 1
    c[10:13, 6:9, 5:8] = 1
    votes = {
        "A": [((3, 3, 3), "wm")],
        "B": [((6, 3, 3), "cortical")],
        "C": [((4, 3, 3), "mixed"), ((11, 7, 6), "wm")],
    }

    cons = build_consensus(three(a, b, c), ISO, votes=votes)

    joined, lone = cons.candidates
    assert joined["votes"] == {"A": "wm", "B": "cortical", "C": "mixed"}
    assert lone["votes"] == {"C": "wm"} and lone["status"] == "rejected"


def test_it_drops_a_raters_conflicting_votes_in_one_candidate() -> None:
    a, b = blank(), blank()
    a[2:4, 2, 2] = 1
    a[6:8, 2, 2] = 1  # two of A's lesions, joined by B's
    b[2:8, 2, 2] = 1
    labels = np.zeros(SHAPE, np.int32)
    labels[2:8, 2, 2] = 1

    votes, conflicts = component_votes(labels, {"A": a != 0, "B": b != 0}, {"A": [((2, 2, 2), "wm"), ((7, 2, 2), "cortical")]})

    assert votes == {} and conflicts == {1: ["A"]}


@pytest.mark.parametrize(
    "votes, message",
    [
        ({"Z": []}, "rater 'Z', who has no mask"),
        ({"A": [((0, 0, 0), "wm")]}, "not inside the rater's mask"),
        ({"A": [((99, 0, 0), "wm")]}, "outside the"),
        ({"A": [((2, 2, 2), "grey")]}, "vote must be one of"),
        ({"A": [(2, 2, 2)]}, r"a vote must be \(\(i, j, k\), vote\)"),
    ],
)
def test_it_refuses_bad_votes(votes: dict, message: str) -> None:
    a, b = blank(), blank()
    a[2, 2, 2] = b[2, 2, 2] = 1

    with pytest.raises(LesionInputError, match=message):
        build_consensus({"A": a, "B": b}, ISO, votes=votes)


def test_it_refuses_one_rater_masks_of_different_shapes_and_non_binary_masks() -> None:
    with pytest.raises(LesionInputError, match="at least 2 raters"):
        build_consensus({"A": blank()}, ISO)
    with pytest.raises(LesionInputError, match="rater B: mask has shape"):
        build_consensus({"A": blank(), "B": np.zeros((4, 4, 4), np.uint8)}, ISO)
    two = blank()
    two[1, 1, 1] = 2
    with pytest.raises(LesionInputError, match="rater B: mask is not binary"):
        build_consensus({"A": blank(), "B": two}, ISO)


def test_it_does_not_modify_the_masks() -> None:
    a, b = blank(), blank()
    a[1:4, 1:4, 1:4] = 1
    b[2:5, 1:4, 1:4] = 1
    before = (a.copy(), b.copy())

    build_consensus({"A": a, "B": b}, ISO)

    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])
