"""Text and JSON show the same numbers; undefined values are n/a in text and null in JSON."""

from __future__ import annotations

import json

import pytest

from qsmreview.stats.analysis import analyse
from qsmreview.stats.report import LABEL_WIDTH, fmt_p, fmt_ppm, fmt_stat, render_json, render_text
from qsmreview.stats.synthetic import reference_cohort
from tests.stats.cohorts import mixed, whole


def cell(text: str) -> float | None:
    return None if text == "n/a" else float(text)


def close(shown: float | None, exact: float | None, digits: int) -> bool:
    if shown is None or exact is None:
        return shown is exact
    return abs(shown - exact) <= 0.51 * 10.0**-digits + 1e-12 * abs(exact)


def close_p(shown: float | None, exact: float | None) -> bool:
    if shown is None or exact is None:
        return shown is exact
    return close(shown, exact, 4) if exact >= 1e-3 else abs(shown - exact) <= 0.0051 * exact


def check_text_against_json(text: str, data: dict) -> None:
    lines = text.splitlines()
    for group in data["groups"]:
        [line] = [ln for ln in lines if ln[:LABEL_WIDTH].strip() == group["label"]]
        star, cells = line[LABEL_WIDTH], line[LABEL_WIDTH + 1:].split()
        assert (star == "*") is group["test"]["in_family"]
        n, mean, sd, low, high, t, df, p, p_bonf, sig, signs = cells
        assert int(n) == group["n"]
        for shown, exact in ((mean, group["mean_ppm"]), (sd, group["sd_ppm"]), (low, group["ci_low_ppm"]),
                             (high, group["ci_high_ppm"])):
            assert close(cell(shown), exact, 4), (group["name"], shown, exact)
        assert close(cell(t), group["test"]["statistic"], 2)
        assert close(cell(df), group["test"]["df"], 2)
        assert close_p(cell(p), group["test"]["p"]) and close_p(cell(p_bonf), group["test"]["p_corrected"])
        assert sig == {True: "yes", False: "no", None: "n/a"}[group["test"]["significant"]]
        assert signs == f"{group['n_positive']}/{group['n_negative']}/{group['n_zero']}"
    for test in data["comparisons"]:
        [line] = [ln for ln in lines if ln.startswith(test["name"] + " ")]
        _, statistic, df, p, p_bonf, estimate, low, high, n = line.split()
        assert close(cell(statistic), test["statistic"], 2) and close(cell(df), test["df"], 2)
        assert close_p(cell(p), test["p"]) and close_p(cell(p_bonf), test["p_corrected"])
        assert close(cell(estimate), test["estimate_ppm"], 4)
        assert close(cell(low), test["ci_low_ppm"], 4) and close(cell(high), test["ci_high_ppm"], 4)
        assert n == "/".join(str(k) for k in test["n"])
    model = data["mixed_model"]
    for coefficient in model["coefficients"]:
        [line] = [ln for ln in lines if ln.startswith(f"  {coefficient['name']} ")]
        _, estimate, se, z, p, low, high = line.split()
        assert close(cell(estimate), coefficient["estimate_ppm"], 4) and close(cell(se), coefficient["se_ppm"], 4)
        assert close(cell(z), coefficient["z"], 2) and close_p(cell(p), coefficient["p"])
        assert close(cell(low), coefficient["ci_low_ppm"], 4) and close(cell(high), coefficient["ci_high_ppm"], 4)
    c = data["correction"]
    if c["m"]:
        assert f"m = {c['m']} tests, alpha {c['alpha']:g}, threshold p <= {c['threshold']:.4f}" in text


def test_it_shows_the_same_numbers_in_text_and_json_for_the_reference_cohort() -> None:
    result = analyse(reference_cohort())
    text, data = render_text(result), json.loads(render_json(result))
    check_text_against_json(text, data)
    assert "threshold p <= 0.0083 (alpha/6)" in text
    assert data["versions"]["statsmodels"] in text


def test_it_shows_undefined_values_as_na_and_null() -> None:
    rows = whole("A", "wm", [0.01, 0.02]) + whole("A", "cortical", [-0.01]) + mixed("A", [(0.01, None)])
    result = analyse(rows)
    text = render_text(result)
    data = json.loads(render_json(result), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    check_text_against_json(text, data)
    cortical = next(g for g in data["groups"] if g["name"] == "cortical_lesions")
    assert cortical["sd_ppm"] is None and cortical["test"]["p"] is None
    assert "- cortical lesions: one value: SD, confidence interval and t test need at least 2" in text
    assert "  not fitted (see notes)" in text


def test_it_renders_an_empty_analysis() -> None:
    result = analyse([])
    text = render_text(result)
    assert "Bonferroni: no test of the family could be run (m = 0)." in text
    check_text_against_json(text, json.loads(render_json(result)))


def test_it_formats_numbers_as_documented() -> None:
    assert (fmt_ppm(0.01449), fmt_ppm(-0.00005), fmt_ppm(None)) == ("0.0145", "-0.0001", "n/a")
    assert (fmt_p(0.04791), fmt_p(0.001), fmt_p(0.000286), fmt_p(7.6e-24)) == ("0.0479", "0.0010", "2.86e-04", "7.60e-24")
    assert (fmt_stat(146.0), fmt_stat(37.9500), fmt_stat(-11.613)) == ("146", "37.95", "-11.61")
