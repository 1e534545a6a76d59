"""Consensus settings: the study defaults, the majority rule and validation with clear messages."""

from __future__ import annotations

import pytest

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams


def test_it_has_the_study_defaults() -> None:
    p = ConsensusParams()

    assert p.majority is None and p.connectivity == 6
    assert p.min_lesion_diameter_mm == 2.0
    assert (p.cortical_fraction_wm, p.cortical_fraction_cortical) == (0.25, 0.75)
    assert (p.reference_max_distance_vox, p.reference_gap_vox, p.reference_min_voxels) == (10.0, 2.0, 20)
    assert (p.agreement_alpha, p.agreement_beta, p.agreement_gamma) == (0.10, 0.70, 0.65)


@pytest.mark.parametrize("n, needed", [(2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_it_takes_a_majority_of_the_raters_given(n: int, needed: int) -> None:
    assert ConsensusParams().majority_of(n) == needed


def test_it_uses_a_fixed_majority_and_refuses_one_above_the_number_of_raters() -> None:
    assert ConsensusParams(majority=3).majority_of(3) == 3
    with pytest.raises(LesionInputError, match="majority 4 is more than the 3 raters"):
        ConsensusParams(majority=4).majority_of(3)
    with pytest.raises(LesionInputError, match="at least 2 raters"):
        ConsensusParams().majority_of(1)


def test_it_round_trips_through_a_dict() -> None:
    p = ConsensusParams(majority=2, reference_gap_vox=1.0, agreement_alpha=0.2)

    assert ConsensusParams.from_dict(p.as_dict()) == p
    assert ConsensusParams.from_dict({}) == ConsensusParams()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"colour": 1}, "unknown consensus setting"),
        ({"majority": 0}, "majority must be at least 1"),
        ({"majority": 2.5}, "majority must be a whole number"),
        ({"connectivity": 26}, "connectivity must be 6"),
        ({"cortical_fraction_wm": 0.8}, "cortical_fraction_wm .* must be below"),
        ({"cortical_fraction_cortical": 1.5}, "between 0 and 1"),
        ({"reference_gap_vox": 10.0}, "reference_gap_vox must be >= 0 and below"),
        ({"reference_min_voxels": 0}, "at least 1"),
        ({"agreement_beta": float("nan")}, "finite number"),
        ({"min_lesion_diameter_mm": True}, "finite number"),
    ],
)
def test_it_refuses_bad_settings_by_name(values: dict, message: str) -> None:
    with pytest.raises(LesionInputError, match=message):
        ConsensusParams.from_dict(values)
