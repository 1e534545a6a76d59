"""The mixed model against statsmodels' formula interface fitted here on the raw (unscaled) values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from qsmreview.stats.mixedmodel import fit_mixed_model, formula


def cohort(seed: int, patients: int = 15, portions: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    means = {"wm": 0.014, "cortical": -0.018, "mixed_wm": 0.01, "mixed_cortical": -0.008}
    rows = []
    for p in range(patients):
        u = rng.normal(0, 0.008)
        sizes = {"wm": rng.integers(2, 15), "cortical": rng.integers(0, 6)}
        if portions:
            sizes |= {"mixed_wm": rng.integers(0, 3), "mixed_cortical": rng.integers(0, 3)}
        for kind, k in sizes.items():
            for _ in range(int(k)):
                rows.append({"subject": f"S{p}", "kind": kind, "y": means[kind] + u + rng.normal(0, 0.012)})
    return pd.DataFrame(rows)


def reference_fit(data: pd.DataFrame):
    # On values in ppm statsmodels always warns "MLE may be on the boundary" (its threshold is
    # absolute, and ppm^2 variances are ~1e-4): the warning the scaling in fit_mixed_model avoids.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The MLE may be on the boundary")
        return smf.mixedlm("y ~ C(kind, Treatment('wm'))", data, groups=data["subject"]).fit(reml=True)


@pytest.mark.parametrize(("seed", "portions"), [(0, False), (1, False), (2, True)])
def test_it_fits_what_statsmodels_fits_from_the_formula(seed: int, portions: bool) -> None:
    data = cohort(seed, portions=portions)
    levels = ("wm", "cortical", "mixed_wm", "mixed_cortical") if portions else ("wm", "cortical")
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]), levels=levels)
    expected = reference_fit(data)
    assert result.fitted and result.converged
    assert (result.n_obs, result.n_patients) == (len(data), data["subject"].nunique())
    assert [c.name for c in result.coefficients] == ["intercept", *levels[1:]]
    names = ["Intercept", *(f"C(kind, Treatment('wm'))[T.{k}]" for k in levels[1:])]
    ci = expected.conf_int(alpha=0.05)
    for c, name in zip(result.coefficients, names, strict=True):
        assert c.estimate_ppm == pytest.approx(expected.fe_params[name], rel=1e-4, abs=1e-7)
        assert c.se_ppm == pytest.approx(expected.bse_fe[name], rel=1e-3)
        assert c.z == pytest.approx(expected.tvalues[name], rel=1e-3)
        assert c.p == pytest.approx(expected.pvalues[name], rel=1e-2, abs=1e-12)
        assert (c.ci_low_ppm, c.ci_high_ppm) == (pytest.approx(ci.loc[name, 0], rel=1e-3, abs=1e-6),
                                                 pytest.approx(ci.loc[name, 1], rel=1e-3, abs=1e-6))
    assert result.random_intercept_var_ppm2 == pytest.approx(float(expected.cov_re.iloc[0, 0]), rel=1e-3)
    assert result.residual_var_ppm2 == pytest.approx(expected.scale, rel=1e-4)
    assert result.formula == formula(levels)
    assert result.warnings == ()


def test_it_writes_the_model_in_lme4_notation() -> None:
    assert formula(("wm", "cortical")) == "relative_susceptibility_ppm ~ 1 + cortical + (1 | subject)"
    assert formula(("wm",)) == "relative_susceptibility_ppm ~ 1 + (1 | subject)"


def test_it_leaves_out_kinds_not_in_the_levels() -> None:
    data = cohort(3, portions=True)
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]))
    kept = data[data["kind"].isin(["wm", "cortical"])]
    assert result.n_obs == len(kept)
    assert result.coefficient("cortical").estimate_ppm == pytest.approx(
        reference_fit(kept).fe_params["C(kind, Treatment('wm'))[T.cortical]"], rel=1e-4)


@pytest.mark.parametrize(
    ("values", "kinds", "subjects", "reason"),
    [
        ([0.1, 0.2, -0.1], ["wm", "wm", "cortical"], ["A", "A", "A"], "1 patient(s)"),
        ([0.1, 0.2, -0.1], ["wm", "wm", "cortical"], ["A", "B", "C"], "no patient has 2 or more values"),
        ([0.1, 0.1, 0.1, 0.1], ["wm"] * 4, ["A", "A", "B", "B"], "all values are equal"),
        ([-0.1, -0.2, -0.1, 0.0], ["cortical"] * 4, ["A", "A", "B", "B"], "no wm values for the reference level"),
        ([0.1, 0.2, -0.1], ["wm", "wm", "cortical"], ["A", "A", "B"], "3 values for 2 fixed effects"),
        ([], [], [], "no wm values"),
    ],
)
def test_it_says_why_it_did_not_fit(values, kinds, subjects, reason) -> None:
    result = fit_mixed_model(np.array(values, dtype=float), kinds, subjects)
    assert not result.fitted and result.coefficients == () and result.converged is None
    assert any(reason in n for n in result.notes)


def test_it_refuses_unknown_levels() -> None:
    with pytest.raises(ValueError, match="levels"):
        fit_mixed_model([0.1], ["wm"], ["A"], levels=("wm", "grey"))
