"""The analysis's result: frozen dataclasses whose ``as_dict()`` is JSON-safe.

Every number is a Python ``float``/``int`` or ``None`` (undefined: a group too small, SD 0, a
model that could not be fitted), never NaN or infinity, so ``json.dumps(..., allow_nan=False)``
always works and the pages, the API and the CLI show the same values. Susceptibilities are in ppm
(``*_ppm``), variances in ppm^2 (``*_ppm2``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


def finite_or_none(value: object) -> float | None:
    """``float(value)`` if it is a finite number, else None (NaN, infinity and None all give None)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # a NumPy scalar that slipped through
        return _plain(value.item())
    raise TypeError(f"not JSON-safe: {type(value).__name__}")


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, str, int, float (finite) and None, ready for ``json.dumps``."""
        return _plain(self)


@dataclass(frozen=True)
class HypothesisTest(_AsDict):
    """One hypothesis test.

    Attributes
    ----------
    name : str
        Its key, e.g. ``"wm_lesions"`` (one-sample t test of that group) or
        ``"cortical_vs_wm_welch"``; family members are named by it.
    method : str
        The test as scipy names it, e.g. ``"one-sample t test (scipy.stats.ttest_1samp)"``.
    statistic : float or None
        t, U or W.
    df : float or None
        Degrees of freedom (t tests only; Welch's is fractional).
    p : float or None
        Two-sided p value, uncorrected.
    estimate_ppm, ci_low_ppm, ci_high_ppm : float or None
        What the test is about (a mean, a difference of means, a mean paired difference) and its
        confidence interval; None for the rank tests.
    n : tuple of int
        Sample sizes (one for a one-sample or paired test, two for two samples).
    notes : tuple of str
        Why a value is None, or what to keep in mind (ties, zero differences dropped, ...).
    in_family : bool
        Whether the test is one of the Bonferroni family.
    p_corrected : float or None
        ``min(1, p * m)`` for family members with a p value, else None.
    significant : bool or None
        ``p <= alpha / m`` for family members with a p value, else None.
    """

    name: str
    method: str
    statistic: float | None
    df: float | None
    p: float | None
    estimate_ppm: float | None
    ci_low_ppm: float | None
    ci_high_ppm: float | None
    n: tuple[int, ...]
    notes: tuple[str, ...] = ()
    in_family: bool = False
    p_corrected: float | None = None
    significant: bool | None = None


@dataclass(frozen=True)
class GroupSummary(_AsDict):
    """Descriptive statistics of one group of values and its one-sample t test against 0.

    Attributes
    ----------
    name : str
        ``wm_lesions``, ``cortical_lesions``, ``mixed_wm_portions``, ``mixed_cortical_portions``,
        or one of these prefixed by ``patient_`` (one value per patient: the mean of that
        patient's lesions in the group).
    label : str
        Human-readable name.
    level : {"lesion", "patient"}
    n : int
        Values in the group (lesions or portions; patients at patient level).
    n_lesions : int
        Lesion values behind them (equal to ``n`` at lesion level).
    n_patients : int
        Patients contributing at least one value.
    mean_ppm, sd_ppm : float or None
        Mean and sample SD (ddof=1); SD None for n < 2, 0.0 when all values are equal.
    ci_low_ppm, ci_high_ppm : float or None
        t-based confidence interval of the mean (level ``Analysis.confidence``).
    n_positive, n_negative, n_zero : int
        Values above, below and equal to 0.
    test : HypothesisTest
        One-sample t test against 0, two-sided (``scipy.stats.ttest_1samp``).
    notes : tuple of str
    """

    name: str
    label: str
    level: str
    n: int
    n_lesions: int
    n_patients: int
    mean_ppm: float | None
    sd_ppm: float | None
    ci_low_ppm: float | None
    ci_high_ppm: float | None
    n_positive: int
    n_negative: int
    n_zero: int
    test: HypothesisTest
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Correction(_AsDict):
    """The Bonferroni correction over the family of tests.

    Attributes
    ----------
    method : str
        ``"bonferroni"`` (``statsmodels.stats.multitest.multipletests``).
    alpha : float
        Family-wise error rate.
    family : tuple of str
        The tests named as the family (``HypothesisTest.name``), as asked.
    tested : tuple of str
        Those of them that gave a p value; ``m = len(tested)``.
    m : int
        Number of comparisons.
    threshold : float or None
        ``alpha / m``: a family member is significant when its p is at most this (None if m = 0).
    notes : tuple of str
        E.g. family members that could not be tested (too few values) and so are not counted.
    """

    method: str
    alpha: float
    family: tuple[str, ...]
    tested: tuple[str, ...]
    m: int
    threshold: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coefficient(_AsDict):
    """One fixed effect of the mixed model (ppm), with its Wald z test and confidence interval."""

    name: str
    estimate_ppm: float | None
    se_ppm: float | None
    z: float | None
    p: float | None
    ci_low_ppm: float | None
    ci_high_ppm: float | None


@dataclass(frozen=True)
class MixedModelResult(_AsDict):
    """A linear mixed-effects model: lesion type as fixed effect, patient as random intercept.

    Attributes
    ----------
    formula : str
        The model, in lme4 notation, e.g.
        ``relative_susceptibility_ppm ~ 1 + cortical + (1 | subject)``; the intercept is the
        WM-lesion mean and each other term the difference from it.
    fitted : bool
        False when the model was not fitted (too few values or patients; see ``notes``).
    method : str
        Estimation and the optimiser that gave the fit
        (``"REML, statsmodels MixedLM (random intercept per patient), optimiser bfgs"``).
    levels : tuple of str
        The lesion kinds in the model (``wm``, ``cortical``, and with portions ``mixed_wm``,
        ``mixed_cortical``); the first is the reference.
    n_obs, n_patients : int
    coefficients : tuple of Coefficient
        ``intercept`` then one per non-reference level.
    random_intercept_var_ppm2, residual_var_ppm2 : float or None
        Between-patient and within-patient variance.
    converged : bool or None
        The optimiser's own verdict (None when not fitted).
    warnings : tuple of str
        Warnings statsmodels raised during the fit (convergence, boundary, singular Hessian).
    notes : tuple of str
    """

    formula: str
    fitted: bool
    method: str
    levels: tuple[str, ...]
    n_obs: int
    n_patients: int
    coefficients: tuple[Coefficient, ...] = ()
    random_intercept_var_ppm2: float | None = None
    residual_var_ppm2: float | None = None
    converged: bool | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def coefficient(self, name: str) -> Coefficient:
        """The coefficient called ``name`` (``KeyError`` if absent)."""
        for c in self.coefficients:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class SubjectCounts(_AsDict):
    """Lesions of one patient in the table, by type (a mixed lesion counts once), and rows skipped.

    ``n_unmeasured_rows`` counts rows without a value, unclassified lesions' rows included.
    """

    subject: str
    n_wm: int
    n_cortical: int
    n_mixed: int
    n_unmeasured_rows: int
    n_unclassified: int = 0


@dataclass(frozen=True)
class Analysis(_AsDict):
    """Everything :func:`qsmreview.stats.analysis.analyse` computes from one lesion table.

    Attributes
    ----------
    source : str
        The table's source (path or label).
    alpha, confidence : float
        Family-wise error rate for the correction; level of every confidence interval.
    n_rows, n_measured, n_unmeasured : int
        Rows in the table; rows with a value; rows with an empty value (skipped).
    n_wm_lesions, n_cortical_lesions, n_mixed_lesions : int
        Lesions in the table by type (a mixed lesion counts once, measured or not).
    n_unclassified_lesions : int
        Lesions consensus left unclassified (no GM or WM voxel): in no statistic.
    subjects : tuple of SubjectCounts
        Per patient, in order of first appearance.
    groups : tuple of GroupSummary
        The four lesion-level groups, then the same four at patient level.
    comparisons : tuple of HypothesisTest
        Cortical vs WM lesions (Welch's t, Mann-Whitney U); WM vs cortical portion within mixed
        lesions (paired t, Wilcoxon signed-rank).
    correction : Correction
    mixed_model : MixedModelResult
    notes : tuple of str
    versions : tuple of (str, str)
        Library versions used (python, numpy, scipy, statsmodels), for provenance.
    """

    source: str
    alpha: float
    confidence: float
    n_rows: int
    n_measured: int
    n_unmeasured: int
    n_wm_lesions: int
    n_cortical_lesions: int
    n_mixed_lesions: int
    n_unclassified_lesions: int
    subjects: tuple[SubjectCounts, ...]
    groups: tuple[GroupSummary, ...]
    comparisons: tuple[HypothesisTest, ...]
    correction: Correction
    mixed_model: MixedModelResult
    notes: tuple[str, ...] = ()
    versions: tuple[tuple[str, str], ...] = field(default=())

    def group(self, name: str) -> GroupSummary:
        """The group called ``name`` (``KeyError`` if absent)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def test(self, name: str) -> HypothesisTest:
        """The test called ``name``: a group's one-sample test or a comparison (``KeyError`` if absent)."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def tests(self) -> tuple[HypothesisTest, ...]:
        """Every test: the groups' one-sample tests, then the comparisons."""
        return tuple(g.test for g in self.groups) + self.comparisons

    def as_dict(self) -> dict[str, Any]:
        """As :meth:`_AsDict.as_dict`, with ``versions`` as a ``{library: version}`` mapping."""
        out = _plain(self)
        out["versions"] = {name: version for name, version in self.versions}
        return out
