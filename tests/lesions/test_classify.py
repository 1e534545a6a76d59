"""Lesion class by cortical fraction GM / (GM + WM), with the 25 % and 75 % boundaries exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsmreview.lesions.classify import check_tissue, classify_lesions, lesion_class, majority_vote
from qsmreview.lesions.errors import LesionInputError

CSF, GM, WM = 1, 2, 3


def one_lesion(codes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A lesion along x whose voxels carry ``codes``; tissue WM elsewhere."""
    labels = np.zeros((len(codes) + 2, 3, 3), np.int32)
    tissue = np.full(labels.shape, WM, np.uint8)
    labels[1 : 1 + len(codes), 1, 1] = 1
    tissue[1 : 1 + len(codes), 1, 1] = codes
    return labels, tissue


@pytest.mark.parametrize(
    "codes, fraction, kind, portions",
    [
        ([GM, WM, WM, WM], 0.25, "wm", ("wm",)),  # exactly 25 %: white matter
        ([GM, GM, WM, WM, WM], 0.4, "mixed", ("cortical", "wm")),
        ([GM, GM, GM, WM], 0.75, "cortical", ("cortical",)),  # exactly 75 %: cortical
        ([GM, GM, GM, GM, GM, GM, GM, WM, WM, WM], 0.7, "mixed", ("cortical", "wm")),
        ([GM, GM, WM, WM, CSF, CSF, CSF, CSF], 0.5, "mixed", ("cortical", "wm")),  # CSF counts for neither
        ([WM, WM], 0.0, "wm", ("wm",)),
        ([GM], 1.0, "cortical", ("cortical",)),
    ],
)
def test_it_classes_a_lesion_by_its_share_of_cortex(codes: list[int], fraction: float, kind: str, portions: tuple) -> None:
    labels, tissue = one_lesion(codes)

    (cls,) = classify_lesions(labels, tissue).values()

    assert cls.cortical_fraction == fraction
    assert cls.lesion_type == kind and cls.portions == portions
    assert (cls.gm_voxels, cls.wm_voxels, cls.n_voxels) == (codes.count(GM), codes.count(WM), len(codes))


def test_it_leaves_a_lesion_without_gm_or_wm_unclassified() -> None:
    labels, tissue = one_lesion([CSF, CSF])

    (cls,) = classify_lesions(labels, tissue).values()

    assert math.isnan(cls.cortical_fraction) and cls.lesion_type == "unclassified" and cls.portions == ()


def test_it_shows_the_raters_majority_vote_beside_the_rule() -> None:
    labels, tissue = one_lesion([GM, GM, GM, WM])

    agree = classify_lesions(labels, tissue, votes={1: {"A": "cortical", "B": "cortical", "C": "wm"}})[1]
    differ = classify_lesions(labels, tissue, votes={1: {"A": "mixed", "B": "mixed", "C": "cortical"}})[1]
    tied = classify_lesions(labels, tissue, votes={1: {"A": "mixed", "B": "wm"}})[1]

    assert (agree.vote_majority, agree.class_disagreement) == ("cortical", False)
    assert (differ.vote_majority, differ.class_disagreement) == ("mixed", True)
    assert (tied.vote_majority, tied.class_disagreement) == ("", False)


def test_it_moves_the_boundaries_with_the_settings() -> None:
    from qsmreview.lesions.params import ConsensusParams

    p = ConsensusParams(cortical_fraction_wm=0.1, cortical_fraction_cortical=0.9)

    assert [lesion_class(f, p) for f in (0.1, 0.25, 0.75, 0.9)] == ["wm", "mixed", "mixed", "cortical"]


def test_it_counts_majority_votes_ignoring_empty_ones() -> None:
    assert majority_vote(["wm", "", "wm", "cortical"]) == "wm"
    assert majority_vote(["", ""]) == ""


@pytest.mark.parametrize("value", [4, -1, 2.5])
def test_it_refuses_tissue_labels_that_are_not_fast_codes(value: float) -> None:
    tissue = np.zeros((3, 3, 3), np.float32)
    tissue[1, 1, 1] = value

    with pytest.raises(LesionInputError, match="FSL FAST codes"):
        check_tissue(tissue)


def test_it_accepts_fast_codes_stored_as_floats() -> None:
    tissue = np.array([0.0, 1.0, 2.0, 3.0], np.float32).reshape(1, 1, 4)

    assert check_tissue(tissue).tolist() == [[[0, 1, 2, 3]]]
