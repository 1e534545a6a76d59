"""The mixed model against statsmodels' formula interface fitted here on the raw (unscaled) values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLM

from qsmreview.stats.mixedmodel import fit_mixed_model, formula, start_params


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


def reference_fit(data: pd.DataFrame) -> SimpleNamespace:
    """statsmodels' formula interface with its default start, on the values in ppb, scaled back to ppm.

    Not on ppm: there statsmodels always warns "MLE may be on the boundary" (its threshold is
    absolute and ppm^2 variances are ~1e-4), and with no patient effect its fit fails (singular
    matrix); the scaling inside fit_mixed_model avoids the same trouble.
    """
    ppb = data.assign(y=data["y"] * 1000)
    fit = smf.mixedlm("y ~ C(kind, Treatment('wm'))", ppb, groups=ppb["subject"]).fit(reml=True)
    return SimpleNamespace(
        fe_params=fit.fe_params / 1000, bse_fe=fit.bse_fe / 1000, tvalues=fit.tvalues, pvalues=fit.pvalues,
        ci=fit.conf_int(alpha=0.05) / 1000, cov_re=float(fit.cov_re.iloc[0, 0]) / 1e6, scale=fit.scale / 1e6,
        converged=fit.converged,
    )


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
    ci = expected.ci
    for c, name in zip(result.coefficients, names, strict=True):
        assert c.estimate_ppm == pytest.approx(expected.fe_params[name], rel=1e-4, abs=1e-7)
        assert c.se_ppm == pytest.approx(expected.bse_fe[name], rel=1e-3)
        assert c.z == pytest.approx(expected.tvalues[name], rel=1e-3)
        assert c.p == pytest.approx(expected.pvalues[name], rel=1e-2, abs=1e-12)
        assert (c.ci_low_ppm, c.ci_high_ppm) == (pytest.approx(ci.loc[name, 0], rel=1e-3, abs=1e-6),
                                                 pytest.approx(ci.loc[name, 1], rel=1e-3, abs=1e-6))
    assert result.random_intercept_var_ppm2 == pytest.approx(expected.cov_re, rel=1e-3)
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


def test_it_starts_at_the_reml_variance_ratio_by_hand_for_a_balanced_design() -> None:
    # Balanced one-way design: REML is the ANOVA estimator when that is positive. Groups (1, 3),
    # (5, 7), (2, 4): MSB = 2 * sum((2|6|3 - 11/3)^2) / 2 = 26/3, MSW = 6/3 = 2, so
    # s_u^2 = (26/3 - 2) / 2 = 10/3 and g = s_u^2 / s_e^2 = 5/3 (by hand)
    start = start_params(np.array([1.0, 3, 5, 7, 2, 4]), np.ones((6, 1)), np.array([0, 0, 1, 1, 2, 2]))
    assert start.fe_params == pytest.approx([11 / 3])
    assert start.cov_re[0, 0] == pytest.approx(5 / 3, rel=1e-6)
    # no spread between the groups beyond the residual: REML on the boundary, g ~ 0
    floor = start_params(np.array([1.0, 3, 1, 3]), np.ones((4, 1)), np.array([0, 0, 1, 1]))
    assert floor.cov_re[0, 0] < 1e-8


def test_it_starts_where_statsmodels_ends() -> None:
    data = cohort(4)
    y = data["y"].to_numpy() * 1000
    design = np.column_stack([np.ones(len(data)), (data["kind"] == "cortical").to_numpy(float)])
    codes = np.unique(data["subject"], return_inverse=True)[1]
    start = start_params(y, design, codes)
    expected = reference_fit(data)
    assert start.cov_re[0, 0] == pytest.approx(expected.cov_re / expected.scale, rel=1e-4)
    assert start.fe_params / 1000 == pytest.approx(expected.fe_params.to_numpy(), rel=1e-5)


def test_it_starts_from_statsmodels_default_when_the_fixed_effects_fit_exactly() -> None:
    start = start_params(np.array([1.0, 1, 0, 0]), np.array([[1.0, 0], [1, 0], [1, 1], [1, 1]]), np.array([0, 1, 0, 1]))
    assert start.cov_re[0, 0] == 1.0 and start.fe_params == pytest.approx([1, -1])


def test_it_finds_the_boundary_fit_when_patients_do_not_differ() -> None:
    # No patient effect: REML puts the between-patient variance at 0, where BFGS stalls; the fixed
    # effects are then those of ordinary least squares.
    rng = np.random.default_rng(8)
    data = pd.DataFrame({
        "subject": [f"S{i % 9}" for i in range(90)],
        "kind": ["cortical" if i % 4 == 0 else "wm" for i in range(90)],
    })
    data["y"] = np.where(data["kind"] == "wm", 0.014, -0.018) + rng.normal(0, 0.012, len(data))
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]))
    assert result.fitted and result.converged
    assert any("boundary" in w for w in result.warnings)
    assert result.random_intercept_var_ppm2 == pytest.approx(0, abs=1e-9)
    ols = smf.ols("y ~ C(kind, Treatment('wm'))", data).fit()
    assert result.residual_var_ppm2 == pytest.approx(ols.scale, rel=1e-4)
    for c, name in zip(result.coefficients, ["Intercept", "C(kind, Treatment('wm'))[T.cortical]"], strict=True):
        assert c.estimate_ppm == pytest.approx(ols.params[name], abs=1e-7)
        # MixedLM's SEs come from the inverse of its whole Hessian (variances included): ~0.3 % off OLS here
        assert c.se_ppm == pytest.approx(ols.bse[name], rel=1e-2)


@pytest.mark.parametrize("patients", [30, 200])
def test_it_stops_where_statsmodels_default_tolerance_stops_to_well_below_an_se(patients: int) -> None:
    data = cohort(11, patients=patients)
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]))
    expected = reference_fit(data)
    names = ["Intercept", "C(kind, Treatment('wm'))[T.cortical]"]
    for c, name in zip(result.coefficients, names, strict=True):
        assert abs(c.estimate_ppm - expected.fe_params[name]) < 1e-3 * expected.bse_fe[name]
        assert c.se_ppm == pytest.approx(expected.bse_fe[name], rel=1e-3)
    assert result.random_intercept_var_ppm2 == pytest.approx(expected.cov_re, rel=5e-3)


def test_it_falls_back_to_powell_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    data = cohort(5)
    original = MixedLM.fit

    def bfgs_fails(self, *args, method=None, **kwargs):
        if method == "bfgs":
            raise np.linalg.LinAlgError("Singular matrix")
        return original(self, *args, method=method, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", bfgs_fails)
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]))
    assert result.fitted and result.converged and result.method.endswith("optimiser powell")
    assert "bfgs did not converge (bfgs: Singular matrix); trying powell" in result.notes
    expected = reference_fit(data)
    assert result.coefficient("cortical").estimate_ppm == pytest.approx(
        expected.fe_params["C(kind, Treatment('wm'))[T.cortical]"], rel=1e-4)


def test_it_reports_a_model_statsmodels_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_fails(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(MixedLM, "fit", always_fails)
    data = cohort(5)
    result = fit_mixed_model(data["y"].to_numpy(), list(data["kind"]), list(data["subject"]))
    assert not result.fitted and result.coefficients == ()
    assert result.notes[-1] == "not fitted: statsmodels failed (powell: Singular matrix)"
