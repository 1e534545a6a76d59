import pytest

from qsmreview.errors import ValidationFailed
from qsmreview.processing.protocol import QSM_DEFAULTS, qsm_parameters


def test_it_defaults_to_medi_with_a_2_5_mm_erosion():
    params = qsm_parameters({})
    assert params["erosion_mm"] == 2.5
    assert params["lam"] == 1000.0
    assert params["background"] == "pdf"
    assert params == QSM_DEFAULTS


def test_it_layers_study_protocol_then_job_overrides():
    params = qsm_parameters({"qsm": {"erosion_mm": 3, "solver": "toolbox"}}, {"solver": "admm"})
    assert params["erosion_mm"] == 3.0
    assert params["solver"] == "admm"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lambda": 500}, "unknown QSM parameter(s): lambda"),
        ({"solver": "nlcg"}, "solver must be one of admm, toolbox"),
        ({"erosion_mm": -1}, "erosion_mm must be within [0, 20]"),
        ({"lam": "big"}, "lam must be a number"),
        ({"smv": "yes"}, "smv must be true or false"),
    ],
)
def test_it_refuses_bad_parameters_with_a_message(overrides, message):
    with pytest.raises(ValidationFailed) as exc:
        qsm_parameters({}, overrides)
    assert message in exc.value.message


def test_it_refuses_a_bad_study_protocol_too():
    with pytest.raises(ValidationFailed, match="background must be one of pdf, vsharp"):
        qsm_parameters({"qsm": {"background": "sharp"}})
