"""The analysis against scipy and statsmodels called here on constructed cohorts, and hand values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from qsmreview.stats.analysis import REFERENCE_FAMILY, TEST_NAMES, analyse, describe, patient_means
from qsmreview.stats.table import LesionRow, parse_table
from tests.stats.cohorts import mixed, per_patient, pooled, random_cohort, whole

KINDS = {"wm_lesions": "wm", "cortical_lesions": "cortical", "mixed_wm_portions": "mixed_wm",
         "mixed_cortical_portions": "mixed_cortical"}


def assert_group_matches_scipy(group, x: np.ndarray) -> None:
    n = x.size
    assert group.n == n
    assert group.mean_ppm == pytest.approx(np.mean(x), rel=1e-12)
    assert group.sd_ppm == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    t, p = stats.ttest_1samp(x, 0.0)
    assert group.test.statistic == pytest.approx(t, rel=1e-10)
    assert group.test.df == n - 1
    assert group.test.p == pytest.approx(p, rel=1e-8)
    low, high = stats.t.interval(0.95, n - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (group.ci_low_ppm, group.ci_high_ppm) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
    assert (group.n_positive, group.n_negative, group.n_zero) == (int((x > 0).sum()), int((x < 0).sum()), int((x == 0).sum()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_describes_every_group_as_scipy_does(seed: int) -> None:
    rows, values = random_cohort(seed)
    result = analyse(rows)
    for name, kind in KINDS.items():
        assert_group_matches_scipy(result.group(name), pooled(values, kind))
        assert_group_matches_scipy(result.group("patient_" + name), per_patient(values, kind))
        assert result.group("patient_" + name).n_lesions == pooled(values, kind).size


def test_it_averages_each_patients_lesions_before_the_patient_level_test() -> None:
    rows = (whole("A", "wm", [0.01, 0.03]) + whole("B", "wm", [0.04]) + whole("C", "wm", [-0.01, 0.01, 0.03])
            + whole("C", "cortical", [-0.02]))
    g = analyse(rows).group("patient_wm_lesions")
    means = np.array([0.02, 0.04, 0.01])  # by hand
    assert (g.n, g.n_lesions, g.n_patients) == (3, 6, 3)
    assert g.mean_ppm == pytest.approx(0.07 / 3)
    assert g.sd_ppm == pytest.approx(math.sqrt(((0.02 - 0.07 / 3) ** 2 + (0.04 - 0.07 / 3) ** 2 + (0.01 - 0.07 / 3) ** 2) / 2))
    assert g.test.p == pytest.approx(stats.ttest_1samp(means, 0).pvalue)
    names, m, counts = patient_means(np.array([0.03, 0.01, 0.04]), np.array(["B", "A", "A"], dtype=object))
    assert list(names) == ["A", "B"] and list(counts) == [2, 1]
    np.testing.assert_allclose(m, [0.025, 0.03])


def test_it_corrects_the_reference_family_with_bonferroni() -> None:
    rows, _ = random_cohort(3)
    result = analyse(rows)
    c = result.correction
    assert REFERENCE_FAMILY == ("wm_lesions", "cortical_lesions", "mixed_wm_portions", "mixed_cortical_portions",
                                "patient_wm_lesions", "patient_cortical_lesions")
    assert (c.method, c.m, c.family, c.tested) == ("bonferroni", 6, REFERENCE_FAMILY, REFERENCE_FAMILY)
    assert c.threshold == pytest.approx(0.05 / 6) and f"{c.threshold:.4f}" == "0.0083"
    p = np.array([result.test(name).p for name in REFERENCE_FAMILY])
    reject, corrected, _, _ = multipletests(p, alpha=0.05, method="bonferroni")
    for name, p_i, r, pc in zip(REFERENCE_FAMILY, p, reject, corrected, strict=True):
        t = result.test(name)
        assert t.in_family
        assert t.p_corrected == pytest.approx(min(1.0, 6 * p_i)) == pytest.approx(pc)
        assert t.significant is bool(r) is bool(p_i <= 0.05 / 6)
    for name in set(TEST_NAMES) - set(REFERENCE_FAMILY):
        t = result.test(name)
        assert (t.in_family, t.p_corrected, t.significant) == (False, None, None)


def test_it_takes_the_family_and_alpha_as_parameters() -> None:
    rows, _ = random_cohort(4)
    result = analyse(rows, family=("wm_lesions", "cortical_vs_wm_welch"), alpha=0.01)
    assert (result.correction.m, result.correction.threshold) == (2, pytest.approx(0.005))
    welch = result.test("cortical_vs_wm_welch")
    assert welch.p_corrected == pytest.approx(min(1.0, 2 * welch.p))
    assert result.test("cortical_lesions").p_corrected is None
    with pytest.raises(ValueError, match="unknown or repeated"):
        analyse(rows, family=("wm_lesions", "grey_matter"))
    with pytest.raises(ValueError, match="unknown or repeated"):
        analyse(rows, family=("wm_lesions", "wm_lesions"))
    with pytest.raises(ValueError, match="alpha"):
        analyse(rows, alpha=1.0)
    with pytest.raises(ValueError, match="confidence"):
        analyse(rows, confidence=0)


def test_it_compares_cortical_and_wm_lesions_as_scipy_does() -> None:
    rows, values = random_cohort(5)
    result = analyse(rows)
    cortical, wm = pooled(values, "cortical"), pooled(values, "wm")
    welch = result.test("cortical_vs_wm_welch")
    expected = stats.ttest_ind(cortical, wm, equal_var=False)
    assert (welch.statistic, welch.p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    # Welch-Satterthwaite degrees of freedom, by hand
    va, vb = cortical.var(ddof=1) / cortical.size, wm.var(ddof=1) / wm.size
    df = (va + vb) ** 2 / (va**2 / (cortical.size - 1) + vb**2 / (wm.size - 1))
    assert welch.df == pytest.approx(df)
    assert welch.estimate_ppm == pytest.approx(cortical.mean() - wm.mean())
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (welch.ci_low_ppm, welch.ci_high_ppm) == (pytest.approx(welch.estimate_ppm - half),
                                                     pytest.approx(welch.estimate_ppm + half))
    mwu = result.test("cortical_vs_wm_mannwhitney")
    expected = stats.mannwhitneyu(cortical, wm, alternative="two-sided")
    assert (mwu.statistic, mwu.p, mwu.n) == (expected.statistic, pytest.approx(expected.pvalue), (cortical.size, wm.size))
    # U of the cortical sample: pairs where the cortical lesion is the larger, by hand
    assert mwu.statistic == sum(float(c > w) + 0.5 * float(c == w) for c in cortical for w in wm)


def test_it_pairs_the_two_portions_of_each_mixed_lesion() -> None:
    pairs = [(0.02, -0.01), (0.005, 0.001), (0.03, -0.02), (0.01, 0.012), (0.0, -0.004)]
    rows = mixed("A", pairs[:3]) + mixed("B", pairs[3:]) + mixed("B", [(0.5, None)], start=9)
    result = analyse(rows)
    wm, cortical = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    paired = result.test("mixed_paired_t")
    expected = stats.ttest_rel(wm, cortical)
    assert (paired.statistic, paired.df, paired.p) == (pytest.approx(expected.statistic), 4, pytest.approx(expected.pvalue))
    assert paired.estimate_ppm == pytest.approx(np.mean(wm - cortical))
    assert paired.n == (5,)
    assert any("1 mixed lesion(s) with only one portion measured" in n for n in paired.notes)
    wilcoxon = result.test("mixed_wilcoxon")
    expected = stats.wilcoxon(wm, cortical)
    assert (wilcoxon.statistic, wilcoxon.p) == (expected.statistic, pytest.approx(expected.pvalue))
    # W = the smaller rank sum: differences .03 .004 .05 -.002 .004 -> ranks 4 2.5 5 1 2.5 -> W- = 1
    assert wilcoxon.statistic == 1.0
    # the unpaired WM portion still counts in its group
    assert result.group("mixed_wm_portions").n == 6


def test_it_explains_a_group_of_one_instead_of_a_nan() -> None:
    rows = whole("A", "wm", [0.01, 0.02, 0.04]) + whole("A", "cortical", [-0.02])
    result = analyse(rows)
    g = result.group("cortical_lesions")
    assert (g.n, g.mean_ppm, g.sd_ppm, g.ci_low_ppm, g.test.statistic, g.test.p) == (1, -0.02, None, None, None, None)
    assert any("one value" in n for n in g.notes)
    welch = result.test("cortical_vs_wm_welch")
    assert welch.p is None and "at least 2 lesions of each type (cortical 1, WM 3)" in welch.notes[0]
    mwu = result.test("cortical_vs_wm_mannwhitney")
    assert mwu.p == pytest.approx(stats.mannwhitneyu([-0.02], [0.01, 0.02, 0.04]).pvalue)
    assert "cortical_lesions" not in result.correction.tested
    assert "not tested, so not counted: cortical_lesions" in result.correction.notes[0]
    json.dumps(result.as_dict(), allow_nan=False)


def test_it_explains_all_equal_values() -> None:
    rows = whole("A", "wm", [0.1, 0.1]) + whole("B", "wm", [0.1]) + whole("A", "cortical", [0.0, 0.0, 0.0])
    rows += mixed("A", [(0.01, 0.0), (0.02, 0.01)])
    result = analyse(rows)
    g = result.group("wm_lesions")
    assert (g.n, g.mean_ppm, g.sd_ppm, g.ci_low_ppm, g.test.p) == (3, 0.1, 0.0, None, None)
    assert any("all 3 values are equal (SD 0)" in n for n in g.notes)
    assert result.group("cortical_lesions").n_zero == 3
    welch = result.test("cortical_vs_wm_welch")
    assert welch.p is None and welch.estimate_ppm == pytest.approx(-0.1) and "SD 0" in welch.notes[0]
    paired = result.test("mixed_paired_t")  # both differences are 0.01
    assert paired.p is None and paired.estimate_ppm == pytest.approx(0.01) and "SD 0" in paired.notes[-1]
    model = result.mixed_model  # type alone explains every value: no residual, no standard error
    assert model.fitted and model.n_obs == 6
    assert [c.estimate_ppm for c in model.coefficients] == [pytest.approx(0.1), pytest.approx(-0.1)]
    assert all(c.se_ppm is None and c.p is None for c in model.coefficients)
    assert any("standard errors are undefined" in n for n in model.notes)
    json.dumps(result.as_dict(), allow_nan=False)


def test_it_notes_patients_with_no_lesion_of_a_type() -> None:
    rows = whole("A", "wm", [0.01, 0.02]) + whole("A", "cortical", [-0.01, -0.03]) + whole("B", "wm", [0.03])
    rows += whole("C", "wm", [0.0]) + whole("C", "cortical", [-0.02])
    result = analyse(rows)
    g = result.group("patient_cortical_lesions")
    assert (g.n, g.n_patients, g.n_lesions) == (2, 2, 3)
    assert g.mean_ppm == pytest.approx(-0.02)
    assert "1 of 3 patients have no measured cortical lesions" in g.notes
    assert [(s.subject, s.n_wm, s.n_cortical, s.n_mixed) for s in result.subjects] == [
        ("A", 2, 2, 0), ("B", 1, 0, 0), ("C", 1, 1, 0)]


def test_it_analyses_an_empty_table() -> None:
    result = analyse(parse_table("subject,lesion,lesion_type,portion,relative_susceptibility_ppm\n"))
    assert (result.n_rows, result.n_measured, result.correction.m, result.correction.threshold) == (0, 0, 0, None)
    assert all(g.n == 0 and g.mean_ppm is None and g.test.p is None for g in result.groups)
    assert all(t.p is None for t in result.comparisons)
    assert not result.mixed_model.fitted
    assert "the table has no rows" in result.notes
    text = json.dumps(result.as_dict(), allow_nan=False)
    assert "NaN" not in text


def test_it_analyses_a_table_with_only_wm_lesions() -> None:
    rng = np.random.default_rng(6)
    values = {s: list(rng.normal(0.014, 0.014, k)) for s, k in (("A", 5), ("B", 3), ("C", 8), ("D", 1))}
    rows = [r for s, v in values.items() for r in whole(s, "wm", v)]
    result = analyse(rows)
    assert_group_matches_scipy(result.group("wm_lesions"), np.concatenate(list(values.values())))
    assert_group_matches_scipy(result.group("patient_wm_lesions"), np.array([np.mean(v) for v in values.values()]))
    assert result.correction.tested == ("wm_lesions", "patient_wm_lesions") and result.correction.m == 2
    assert result.test("wm_lesions").p_corrected == pytest.approx(min(1, 2 * result.test("wm_lesions").p))
    assert result.group("cortical_lesions").n == 0 and result.test("cortical_vs_wm_mannwhitney").p is None
    m = result.mixed_model
    assert m.fitted and m.levels == ("wm",) and [c.name for c in m.coefficients] == ["intercept"]
    assert "no cortical values: that term is left out" in m.notes
    json.dumps(result.as_dict(), allow_nan=False)


def test_it_counts_lesions_and_skips_rows_without_a_value() -> None:
    rows = whole("A", "wm", [0.01, None, 0.02]) + mixed("A", [(0.01, None)]) + whole("B", "cortical", [None])
    result = analyse(rows)
    assert (result.n_rows, result.n_measured, result.n_unmeasured) == (6, 3, 3)
    assert (result.n_wm_lesions, result.n_cortical_lesions, result.n_mixed_lesions) == (3, 1, 1)
    assert [(s.subject, s.n_unmeasured_rows) for s in result.subjects] == [("A", 2), ("B", 1)]
    assert "3 row(s) without a value skipped (not measured)" in result.notes


def test_it_records_library_versions() -> None:
    import scipy
    import statsmodels

    versions = analyse([]).as_dict()["versions"]
    assert versions["numpy"] == np.__version__
    assert versions["scipy"] == scipy.__version__
    assert versions["statsmodels"] == statsmodels.__version__


def test_it_never_modifies_its_input_and_describe_stands_alone() -> None:
    x = np.array([0.3, -0.1, 0.0, 0.2])
    before = x.copy()
    g = describe(x, name="g", confidence=0.9)
    np.testing.assert_array_equal(x, before)
    low, high = stats.t.interval(0.9, 3, loc=x.mean(), scale=stats.sem(x))
    assert (g.ci_low_ppm, g.ci_high_ppm) == (pytest.approx(low), pytest.approx(high))
    assert (g.n_positive, g.n_negative, g.n_zero) == (2, 1, 1)
    rows = (LesionRow("A", "1", "wm", "wm", 0.1),)
    analyse(rows)
    assert rows == (LesionRow("A", "1", "wm", "wm", 0.1),)


def test_it_counts_unclassified_lesions_and_leaves_them_out() -> None:
    rows = whole("A", "wm", [0.01, 0.02]) + [LesionRow("A", "u1", "unclassified", "", None),
                                             LesionRow("B", "u2", "unclassified", "", None)]
    result = analyse(rows)
    assert (result.n_unclassified_lesions, result.n_wm_lesions, result.n_unmeasured) == (2, 2, 2)
    assert [(s.subject, s.n_unclassified) for s in result.subjects] == [("A", 1), ("B", 1)]
    assert result.group("wm_lesions").n == 2 and result.group("patient_wm_lesions").n == 1
    assert "2 unclassified lesion(s) (no GM or WM voxel) left out of every statistic" in result.notes
