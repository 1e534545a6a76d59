"""The analysis as plain text (fixed-width tables) or JSON, the same numbers in both.

Text rounds for reading: ppm to 4 decimals, t/z to 2, p to 4 decimals (or 3 significant digits in
scientific notation below 0.001); ``n/a`` marks an undefined value (None in JSON), and the notes
say why. JSON (:func:`render_json`) carries every number at full precision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from qsmreview.stats.results import Analysis, GroupSummary, HypothesisTest

#: Width of the label column of the group table.
LABEL_WIDTH = 46
NA = "n/a"


def fmt_ppm(value: float | None) -> str:
    """A susceptibility (ppm), 4 decimals."""
    return NA if value is None else f"{value:.4f}"


def fmt_p(value: float | None) -> str:
    """A p value: 4 decimals from 0.001 up, else 3 significant digits in scientific notation."""
    if value is None:
        return NA
    return f"{value:.4f}" if value >= 1e-3 else f"{value:.2e}"


def fmt_stat(value: float | None) -> str:
    """A test statistic or degrees of freedom: 2 decimals (integers as such)."""
    if value is None:
        return NA
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _sig(test: HypothesisTest) -> str:
    return NA if test.significant is None else ("yes" if test.significant else "no")


def _group_line(g: GroupSummary) -> str:
    t = g.test
    mark = "*" if t.in_family else " "
    cells = (
        str(g.n), fmt_ppm(g.mean_ppm), fmt_ppm(g.sd_ppm), fmt_ppm(g.ci_low_ppm), fmt_ppm(g.ci_high_ppm),
        fmt_stat(t.statistic), fmt_stat(t.df), fmt_p(t.p), fmt_p(t.p_corrected), _sig(t),
        f"{g.n_positive}/{g.n_negative}/{g.n_zero}",
    )
    widths = (5, 9, 9, 9, 9, 8, 7, 10, 10, 4, 10)
    return f"{g.label:<{LABEL_WIDTH}}{mark} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))


GROUP_HEADER = f"{'group':<{LABEL_WIDTH}}  " + " ".join(
    f"{h:>{w}}"
    for h, w in zip(
        ("n", "mean", "SD", "CI low", "CI high", "t", "df", "p", "p_bonf", "sig", "+/-/0"),
        (5, 9, 9, 9, 9, 8, 7, 10, 10, 4, 10),
        strict=True,
    )
)
TEST_WIDTHS = (28, 10, 7, 10, 10, 9, 9, 9, 8)
TEST_HEADER = " ".join(
    f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
    for i, (h, w) in enumerate(
        zip(("test", "statistic", "df", "p", "p_bonf", "estimate", "CI low", "CI high", "n"), TEST_WIDTHS, strict=True)
    )
)


def _test_line(t: HypothesisTest) -> str:
    cells = (
        t.name, fmt_stat(t.statistic), fmt_stat(t.df), fmt_p(t.p), fmt_p(t.p_corrected),
        fmt_ppm(t.estimate_ppm), fmt_ppm(t.ci_low_ppm), fmt_ppm(t.ci_high_ppm), "/".join(str(k) for k in t.n),
    )
    return " ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, TEST_WIDTHS, strict=True)))


def _notes(items: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    return [f"- {who}: {note}" if who else f"- {note}" for who, notes in items for note in notes]


def render_text(result: Analysis) -> str:
    """The whole analysis as text for a terminal (ends with a newline)."""
    c, m = result.correction, result.mixed_model
    level = f"{100 * result.confidence:g}%"
    out = [
        "Lesion susceptibility: group statistics (qsmreview.stats, issue 18)",
        f"Table: {result.source or '(rows given in code)'}",
        f"Rows: {result.n_rows} ({result.n_measured} measured, {result.n_unmeasured} without a value, skipped); "
        f"patients: {len(result.subjects)}; lesions: {result.n_wm_lesions} WM, {result.n_cortical_lesions} cortical, "
        f"{result.n_mixed_lesions} mixed"
        + (f", {result.n_unclassified_lesions} unclassified (left out)" if result.n_unclassified_lesions else ""),
        "",
        f"Relative susceptibility (ppm). One-sample t test of the mean against 0, two-sided; {level} CI t-based.",
    ]
    if c.m:
        out.append(
            f"Bonferroni over the family marked *: m = {c.m} tests, alpha {c.alpha:g}, "
            f"threshold p <= {c.threshold:.4f} (alpha/{c.m}); p_bonf = min(1, p * {c.m})."
        )
    else:
        out.append("Bonferroni: no test of the family could be run (m = 0).")
    out += ["", GROUP_HEADER]
    lesion = [g for g in result.groups if g.level == "lesion"]
    patient = [g for g in result.groups if g.level == "patient"]
    out += [_group_line(g) for g in lesion]
    out += ["Per patient (each patient's mean of the group's values; n = patients):"]
    out += [_group_line(g) for g in patient]
    out += ["", "Comparisons (estimate in ppm; p_bonf only for tests named in the family):", TEST_HEADER]
    out += [_test_line(t) for t in result.comparisons]
    out += [f"  {t.name}: {t.method}" for t in result.comparisons]
    out += ["", f"Mixed model: {m.formula}", f"  {m.method}; {m.n_obs} values, {m.n_patients} patients"]
    if m.fitted:
        out[-1] += f"; converged: {'yes' if m.converged else 'NO'}"
        out.append(f"  {'term':<16}{'estimate':>10}{'SE':>10}{'z':>9}{'p':>11}{'CI low':>10}{'CI high':>10}")
        for k in m.coefficients:
            out.append(
                f"  {k.name:<16}{fmt_ppm(k.estimate_ppm):>10}{fmt_ppm(k.se_ppm):>10}{fmt_stat(k.z):>9}"
                f"{fmt_p(k.p):>11}{fmt_ppm(k.ci_low_ppm):>10}{fmt_ppm(k.ci_high_ppm):>10}"
            )
        out.append(
            f"  variance: between patients {_var(m.random_intercept_var_ppm2)}, "
            f"within patients (residual) {_var(m.residual_var_ppm2)}"
        )
    else:
        out.append("  not fitted (see notes)")
    out += ["", "Patients (lesions cortical/WM/mixed; rows without a value):"]
    out += [
        f"  {s.subject:<16}{s.n_cortical:>4}/{s.n_wm}/{s.n_mixed}"
        + (f"; {s.n_unclassified} unclassified" if s.n_unclassified else "")
        + (f"; {s.n_unmeasured_rows} skipped" if s.n_unmeasured_rows else "")
        for s in result.subjects
    ]
    notes = _notes(
        [("", result.notes), ("Bonferroni", c.notes)]
        + [(g.label, g.notes) for g in result.groups]
        + [(t.name, t.notes) for t in result.comparisons]
        + [("mixed model", m.notes), ("mixed model warning", m.warnings)]
    )
    if notes:
        out += ["", "Notes:", *notes]
    out += ["", "Versions: " + ", ".join(f"{name} {version}" for name, version in result.versions)]
    return "\n".join(out) + "\n"


def _var(value: float | None) -> str:
    if value is None:
        return NA
    return f"{value:.2e} ppm^2 (SD {value ** 0.5:.4f} ppm)"


def render_json(result: Analysis, *, indent: int | None = 2) -> str:
    """``result.as_dict()`` as JSON (no NaN: undefined values are null)."""
    return json.dumps(result.as_dict(), indent=indent, allow_nan=False) + "\n"
