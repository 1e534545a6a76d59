"""Group statistics of lesion susceptibility (issue 18): the reference study's tests and more.

Groups (relative susceptibility, ppm):

- ``wm_lesions``, ``cortical_lesions``: whole lesions of that type;
- ``mixed_wm_portions``, ``mixed_cortical_portions``: the WM and the cortical portion of mixed
  lesions;
- ``patient_<group>``: the same four after averaging each patient's values, one value per patient
  who has any.

Each group gets n, mean, SD (ddof=1), a t-based confidence interval, a one-sample two-sided t test
against 0 (``scipy.stats.ttest_1samp``) and the counts of positive, negative and zero values. A
Bonferroni correction (``statsmodels.stats.multitest.multipletests``) runs over a family of tests,
by default the reference study's six (:data:`REFERENCE_FAMILY`). Beyond the reference study:
cortical vs WM lesions (Welch's t test, Mann-Whitney U), WM vs cortical portion within mixed lesions
(paired t test, Wilcoxon signed-rank) and a linear mixed-effects model
(:mod:`qsmreview.stats.mixedmodel`). Where a group is too small or its values are all equal, the
numbers are None and a note says why. No Django, no file I/O.

References
----------
Wisnieff C, Ramanan S, Olesik J, Gauthier S, Wang Y, Pitt D. Quantitative susceptibility mapping
(QSM) of white matter multiple sclerosis lesions: interpreting positive susceptibility and the
presence of iron. Magn Reson Med 2015;74:564-570 (the design of the WM-lesion analysis: what a
lesion's susceptibility relative to its surroundings, and its sign, say about iron and myelin).
The 7T group figures this analysis reproduces (WM, cortical and mixed lesions, per patient, the
Bonferroni family of six) are the reference study's Table 3 as given in issue 18
(:data:`qsmreview.stats.synthetic.REFERENCE_TABLE3`).
"""

from __future__ import annotations

import platform
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests

from qsmreview.stats.mixedmodel import fit_mixed_model
from qsmreview.stats.results import (
    Analysis,
    Correction,
    GroupSummary,
    HypothesisTest,
    SubjectCounts,
    finite_or_none,
)
from qsmreview.stats.table import UNCLASSIFIED, LesionRow, LesionTable

#: Lesion-level groups: name -> (lesion_type, portion, label).
GROUPS: dict[str, tuple[str, str, str]] = {
    "wm_lesions": ("wm", "wm", "WM lesions"),
    "cortical_lesions": ("cortical", "cortical", "cortical lesions"),
    "mixed_wm_portions": ("mixed", "wm", "mixed lesions, WM portion"),
    "mixed_cortical_portions": ("mixed", "cortical", "mixed lesions, cortical portion"),
}
#: Prefix of the per-patient groups' names.
PATIENT = "patient_"
#: The reference study's family of six tests, Bonferroni-corrected together (alpha / 6 = .0083):
#: the four lesion-level one-sample tests and the per-patient WM and cortical ones.
REFERENCE_FAMILY = (
    "wm_lesions",
    "cortical_lesions",
    "mixed_wm_portions",
    "mixed_cortical_portions",
    "patient_wm_lesions",
    "patient_cortical_lesions",
)
#: Names of the comparisons (two-sample and paired tests).
COMPARISONS = ("cortical_vs_wm_welch", "cortical_vs_wm_mannwhitney", "mixed_paired_t", "mixed_wilcoxon")
#: Every test name a family may contain.
TEST_NAMES = (*GROUPS, *(PATIENT + g for g in GROUPS), *COMPARISONS)

_T1 = "one-sample t test against 0 (scipy.stats.ttest_1samp)"


def _counts(x: np.ndarray) -> tuple[int, int, int]:
    return int(np.sum(x > 0)), int(np.sum(x < 0)), int(np.sum(x == 0))


def _run(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, tuple[str, ...]]:
    """Call a scipy test, returning (its result, the texts of the warnings it raised)."""
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    return result, tuple(dict.fromkeys(str(w.message) for w in raised))


def describe(
    values_ppm: Sequence[float] | np.ndarray,
    *,
    name: str,
    label: str = "",
    level: str = "lesion",
    confidence: float = 0.95,
    n_lesions: int | None = None,
    n_patients: int = 0,
    notes: Sequence[str] = (),
) -> GroupSummary:
    """Describe one group and test its mean against 0.

    Parameters
    ----------
    values_ppm : (n,) float array-like
        Finite values, ppm. Not modified.
    name, label, level : str
        Stored as given (see :class:`GroupSummary`).
    confidence : float
        Level of the t-based confidence interval of the mean.
    n_lesions, n_patients : int
        Stored as given (``n_lesions`` defaults to n).
    notes : sequence of str
        Put before the notes this function adds.

    Returns
    -------
    GroupSummary
        For n = 0 everything is None; for n = 1 the mean only; when all values are equal the
        mean and SD 0, with no interval and no test (t would be 0/0 or infinite).
    """
    x = np.asarray(values_ppm, dtype=np.float64)
    n = int(x.size)
    pos, neg, zero = _counts(x)
    notes = list(notes)
    mean = sd = lo = hi = t = df = p = None
    test_notes: list[str] = []
    if n == 0:
        test_notes.append("no values: nothing to test")
    elif n == 1:
        mean = float(x[0])
        test_notes.append("one value: SD, confidence interval and t test need at least 2")
    elif np.ptp(x) == 0:
        mean, sd = float(x[0]), 0.0
        test_notes.append(f"all {n} values are equal (SD 0): no confidence interval, t test undefined")
    else:
        mean, sd = float(np.mean(x)), float(np.std(x, ddof=1))
        result, caught = _run(stats.ttest_1samp, x, 0.0)
        interval = result.confidence_interval(confidence)
        t, df, p = finite_or_none(result.statistic), finite_or_none(result.df), finite_or_none(result.pvalue)
        lo, hi = finite_or_none(interval.low), finite_or_none(interval.high)
        test_notes.extend(caught)
    test = HypothesisTest(name, _T1, t, df, p, mean if n else None, lo, hi, (n,), tuple(test_notes))
    return GroupSummary(
        name=name,
        label=label or name,
        level=level,
        n=n,
        n_lesions=n if n_lesions is None else n_lesions,
        n_patients=n_patients,
        mean_ppm=mean,
        sd_ppm=sd,
        ci_low_ppm=lo,
        ci_high_ppm=hi,
        n_positive=pos,
        n_negative=neg,
        n_zero=zero,
        test=test,
        notes=tuple(notes + test_notes),
    )


def patient_means(values_ppm: np.ndarray, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average each patient's values.

    Parameters
    ----------
    values_ppm : (N,) float array
    subjects : (N,) array of str or int
        Patient of each value (names, or integer codes).

    Returns
    -------
    subjects : (P,) array
        The patients with at least one value, sorted.
    means : (P,) float64 array
        Each patient's mean, ppm.
    counts : (P,) int array
        Values behind each mean.
    """
    names, codes, counts = np.unique(np.asarray(subjects), return_inverse=True, return_counts=True)
    sums = np.bincount(codes, weights=np.asarray(values_ppm, dtype=np.float64), minlength=names.size)
    return names, sums / np.maximum(counts, 1), counts


def _two_sample(
    a: np.ndarray, b: np.ndarray, confidence: float
) -> tuple[HypothesisTest, HypothesisTest]:
    """Cortical (a) vs WM (b) lesions: Welch's t test and Mann-Whitney U, two-sided."""
    n = (int(a.size), int(b.size))
    welch_method = "Welch's t test, cortical - WM lesions (scipy.stats.ttest_ind, equal_var=False)"
    mwu_method = "Mann-Whitney U, cortical vs WM lesions (scipy.stats.mannwhitneyu; U of the cortical lesions)"
    if min(n) < 2:
        welch = HypothesisTest("cortical_vs_wm_welch", welch_method, None, None, None, None, None, None, n,
                               (f"needs at least 2 lesions of each type (cortical {n[0]}, WM {n[1]})",))
    elif np.ptp(a) == 0 and np.ptp(b) == 0:
        welch = HypothesisTest("cortical_vs_wm_welch", welch_method, None, None, None,
                               float(a[0] - b[0]), None, None, n,
                               ("both groups have SD 0: Welch's t test undefined",))
    else:
        result, caught = _run(stats.ttest_ind, a, b, equal_var=False)
        ci = result.confidence_interval(confidence)
        welch = HypothesisTest("cortical_vs_wm_welch", welch_method, finite_or_none(result.statistic),
                               finite_or_none(result.df), finite_or_none(result.pvalue),
                               float(np.mean(a) - np.mean(b)), finite_or_none(ci.low), finite_or_none(ci.high),
                               n, caught)
    if min(n) < 1:
        mwu = HypothesisTest("cortical_vs_wm_mannwhitney", mwu_method, None, None, None, None, None, None, n,
                             (f"needs at least 1 lesion of each type (cortical {n[0]}, WM {n[1]})",))
    elif np.ptp(np.concatenate([a, b])) == 0:
        mwu = HypothesisTest("cortical_vs_wm_mannwhitney", mwu_method, None, None, None, None, None, None, n,
                             ("all values are equal: Mann-Whitney U undefined",))
    else:
        result, caught = _run(stats.mannwhitneyu, a, b, alternative="two-sided")
        mwu = HypothesisTest("cortical_vs_wm_mannwhitney", mwu_method, finite_or_none(result.statistic), None,
                             finite_or_none(result.pvalue), None, None, None, n, caught)
    return welch, mwu


def _paired(wm: np.ndarray, cortical: np.ndarray, confidence: float, unpaired: int) -> tuple[HypothesisTest, HypothesisTest]:
    """WM vs cortical portion within mixed lesions: paired t test and Wilcoxon signed-rank."""
    n = (int(wm.size),)
    d = wm - cortical
    common = (f"{unpaired} mixed lesion(s) with only one portion measured left out",) if unpaired else ()
    t_method = "paired t test, WM - cortical portion of mixed lesions (scipy.stats.ttest_rel)"
    w_method = "Wilcoxon signed-rank, WM - cortical portion of mixed lesions (scipy.stats.wilcoxon)"
    if n[0] < 2:
        paired = HypothesisTest("mixed_paired_t", t_method, None, None, None,
                                float(d[0]) if n[0] else None, None, None, n,
                                (*common, f"needs at least 2 mixed lesions with both portions measured, has {n[0]}"))
    elif np.ptp(d) == 0:
        paired = HypothesisTest("mixed_paired_t", t_method, None, None, None, float(d[0]), None, None, n,
                                (*common, "all paired differences are equal (SD 0): t test undefined"))
    else:
        result, caught = _run(stats.ttest_rel, wm, cortical)
        ci = result.confidence_interval(confidence)
        paired = HypothesisTest("mixed_paired_t", t_method, finite_or_none(result.statistic),
                                finite_or_none(result.df), finite_or_none(result.pvalue), float(np.mean(d)),
                                finite_or_none(ci.low), finite_or_none(ci.high), n, (*common, *caught))
    zeros = int(np.sum(d == 0))
    if n[0] - zeros < 1:
        wilcoxon = HypothesisTest("mixed_wilcoxon", w_method, None, None, None, None, None, None, n,
                                  (*common, "no non-zero paired difference: nothing to rank"))
    else:
        result, caught = _run(stats.wilcoxon, wm, cortical)
        extra = (f"{zeros} zero difference(s) dropped (zero_method='wilcox')",) if zeros else ()
        wilcoxon = HypothesisTest("mixed_wilcoxon", w_method, finite_or_none(result.statistic), None,
                                  finite_or_none(result.pvalue), None, None, None, n, (*common, *extra, *caught))
    return paired, wilcoxon


def _correct(tests: Sequence[HypothesisTest], family: Sequence[str], alpha: float) -> tuple[list[HypothesisTest], Correction]:
    tested = tuple(t.name for t in tests if t.name in family and t.p is not None)
    skipped = tuple(name for name in family if name not in tested)
    notes = (f"not tested, so not counted: {', '.join(skipped)}",) if skipped else ()
    if not tested:
        marked = [replace(t, in_family=t.name in family) for t in tests]
        return marked, Correction("bonferroni", alpha, tuple(family), (), 0, None, notes)
    p = np.array([next(t.p for t in tests if t.name == name) for name in tested])
    reject, corrected, _, threshold = multipletests(p, alpha=alpha, method="bonferroni")
    by_name = {name: (float(c), bool(r)) for name, c, r in zip(tested, corrected, reject, strict=True)}
    marked = [
        replace(t, in_family=t.name in family, p_corrected=by_name.get(t.name, (None, None))[0],
                significant=by_name.get(t.name, (None, None))[1])
        for t in tests
    ]
    return marked, Correction("bonferroni", alpha, tuple(family), tested, len(tested), float(threshold), notes)


def versions() -> tuple[tuple[str, str], ...]:
    """Versions of Python and the libraries that compute the numbers."""
    return (
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("statsmodels", statsmodels.__version__),
    )


def analyse(
    table: LesionTable | Iterable[LesionRow],
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    family: Sequence[str] = REFERENCE_FAMILY,
    model_portions: bool = False,
) -> Analysis:
    """The whole analysis of a validated lesion table.

    Parameters
    ----------
    table : LesionTable or iterable of LesionRow
        Validated rows (:func:`qsmreview.stats.table.read_table`); rows without a value are
        skipped and counted. Not modified.
    alpha : float
        Family-wise error rate of the Bonferroni correction, in (0, 1).
    confidence : float
        Level of every confidence interval, in (0, 1).
    family : sequence of str
        Names (:data:`TEST_NAMES`) of the tests corrected together; default the reference
        study's six. Tests that cannot be run (too few values) are not counted in m.
    model_portions : bool
        Also put the WM and cortical portions of mixed lesions in the mixed model (as two more
        levels); by default it has WM and cortical lesions only.

    Returns
    -------
    Analysis

    Raises
    ------
    ValueError
        ``alpha`` or ``confidence`` outside (0, 1), or an unknown or repeated family name.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    family = tuple(family)
    unknown = [name for name in family if name not in TEST_NAMES]
    if unknown or len(set(family)) != len(family):
        raise ValueError(f"family: unknown or repeated test names {unknown or family}; known: {', '.join(TEST_NAMES)}")
    source = table.source if isinstance(table, LesionTable) else ""
    rows = tuple(table.rows if isinstance(table, LesionTable) else table)
    measured = [r for r in rows if r.relative_susceptibility_ppm is not None]
    values = np.array([r.relative_susceptibility_ppm for r in measured], dtype=np.float64)
    subjects = np.array([r.subject for r in measured], dtype=object)
    codes = np.unique(subjects, return_inverse=True)[1] if subjects.size else np.zeros(0, dtype=np.intp)
    kinds = np.array(
        [r.lesion_type if r.lesion_type != "mixed" else f"mixed_{r.portion}" for r in measured], dtype=object
    )

    lesions = Counter((s, t) for s, t, _ in {(r.subject, r.lesion_type, r.lesion) for r in rows})
    unmeasured = Counter(r.subject for r in rows if r.relative_susceptibility_ppm is None)
    per_subject = tuple(
        SubjectCounts(s, lesions[s, "wm"], lesions[s, "cortical"], lesions[s, "mixed"], unmeasured[s],
                      lesions[s, UNCLASSIFIED])
        for s in dict.fromkeys(r.subject for r in rows)
    )
    all_subjects = len(per_subject)

    lesion_groups: list[GroupSummary] = []
    patient_groups: list[GroupSummary] = []
    for name, (lesion_type, portion, label) in GROUPS.items():
        kind = lesion_type if lesion_type != "mixed" else f"mixed_{portion}"
        inside = kinds == kind
        x, s = values[inside], codes[inside]
        with_values, means, per = patient_means(x, s)
        lesion_groups.append(describe(x, name=name, label=label, level="lesion", confidence=confidence,
                                      n_patients=int(with_values.size)))
        missing = all_subjects - int(with_values.size)
        patient_groups.append(
            describe(means, name=PATIENT + name, label=f"{label}, per patient", level="patient",
                     confidence=confidence, n_lesions=int(per.sum()), n_patients=int(with_values.size),
                     notes=(f"{missing} of {all_subjects} patients have no measured {label}",) if missing else ())
        )

    welch, mwu = _two_sample(values[kinds == "cortical"], values[kinds == "wm"], confidence)
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    for r in measured:
        if r.lesion_type == "mixed":
            pairs.setdefault((r.subject, r.lesion), {})[r.portion] = r.relative_susceptibility_ppm  # type: ignore[assignment]
    both = [p for p in pairs.values() if len(p) == 2]
    paired, wilcoxon = _paired(
        np.array([p["wm"] for p in both], dtype=np.float64),
        np.array([p["cortical"] for p in both], dtype=np.float64),
        confidence,
        unpaired=len(pairs) - len(both),
    )

    groups = lesion_groups + patient_groups
    tests, correction = _correct([g.test for g in groups] + [welch, mwu, paired, wilcoxon], family, alpha)
    groups = [replace(g, test=t) for g, t in zip(groups, tests, strict=False)]
    model = fit_mixed_model(
        values, kinds, codes,
        levels=("wm", "cortical", "mixed_wm", "mixed_cortical") if model_portions else ("wm", "cortical"),
        confidence=confidence,
    )
    notes = []
    unclassified = sum(c.n_unclassified for c in per_subject)
    if unclassified:
        notes.append(f"{unclassified} unclassified lesion(s) (no GM or WM voxel) left out of every statistic")
    if len(rows) - len(measured):
        notes.append(f"{len(rows) - len(measured)} row(s) without a value skipped (not measured)")
    if not rows:
        notes.append("the table has no rows")
    return Analysis(
        source=source,
        alpha=float(alpha),
        confidence=float(confidence),
        n_rows=len(rows),
        n_measured=len(measured),
        n_unmeasured=len(rows) - len(measured),
        n_wm_lesions=sum(c.n_wm for c in per_subject),
        n_cortical_lesions=sum(c.n_cortical for c in per_subject),
        n_mixed_lesions=sum(c.n_mixed for c in per_subject),
        n_unclassified_lesions=unclassified,
        subjects=per_subject,
        groups=tuple(groups),
        comparisons=tuple(tests[len(groups):]),
        correction=correction,
        mixed_model=model,
        notes=tuple(notes),
        versions=versions(),
    )
