"""Check that a text report shows the numbers of its JSON, to the text's rounding."""

from __future__ import annotations

from qsmreview.stats.report import LABEL_WIDTH


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
