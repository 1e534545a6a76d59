"""Linear mixed-effects model of lesion susceptibility: lesion kind fixed, patient random intercept.

The lesion-level t tests treat every lesion as independent, but lesions of one patient share that
patient's reference ROI, iron and myelin status and scan; the per-patient averages lose the lesion
counts. The mixed model keeps both:

    y_ij = b0 + sum_k b_k [kind_ij = k] + u_i + e_ij,   u_i ~ N(0, s_u^2),  e_ij ~ N(0, s_e^2)

where ``y_ij`` is lesion j of patient i (ppm), the reference kind is WM lesions (``b0`` is their
mean), and ``b_k`` is the difference of kind ``k`` (cortical lesions; optionally the WM and
cortical portions of mixed lesions) from it. Fitted by REML with statsmodels' ``MixedLM``; the
coefficients' p values are its Wald z tests. The two portions of one mixed lesion are treated as
independent given the patient (no lesion-level random effect).

The values are divided by their SD before fitting and the results scaled back: statsmodels judges
"random effects on the boundary" with an absolute threshold that variances in ppm^2 (~1e-4) always
fall under, and the optimiser behaves better on unit-scale data. z and p do not change.

The optimiser starts from the ordinary least-squares fixed effects and the one-way ANOVA (method of
moments) estimate of the variance ratio s_u^2 / s_e^2 on their residuals (Searle's n0 for unequal
group sizes), at least :data:`MIN_START_RATIO` (statsmodels parametrises the variance by its square
root, whose gradient vanishes at 0). This changes only where the search starts: statsmodels'
default start (ratio 1) needs 2-3 times as many likelihood evaluations, each a Python loop over the
patients. BFGS (gradient tolerance :data:`BFGS_GTOL`) is tried first; if it does not converge (typically when the between-patient variance
is estimated at 0, on the boundary), Powell's derivative-free search is tried from the same start
(:data:`OPTIMISERS`). The result records which optimiser it comes from and whether it converged.

References
----------
Lindstrom MJ, Bates DM. Newton-Raphson and EM algorithms for linear mixed-effects models for
repeated-measures data. J Am Stat Assoc 1988;83:1014-1022 (the likelihood statsmodels maximises).
Seabold S, Perktold J. statsmodels: econometric and statistical modeling with Python. Proc 9th
Python in Science Conference, 2010.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

from qsmreview.stats.results import Coefficient, MixedModelResult, finite_or_none

#: Kinds of value the model knows, the reference (WM lesions) first.
KINDS = ("wm", "cortical", "mixed_wm", "mixed_cortical")
METHOD = "REML, statsmodels MixedLM (random intercept per patient)"
#: Optimisers tried in turn until one converges: BFGS (fast), then Powell (derivative-free: converges
#: when the between-patient variance is 0, where BFGS on statsmodels' square-root parametrisation
#: stalls and its Hessian is singular).
OPTIMISERS = ("bfgs", "powell")
#: BFGS stops when the gradient of the per-value negative log-likelihood is below this (scipy's
#: default is 1e-5). At 1e-4, on 10,000 lesions in 500 patients, BFGS needs 3 instead of 4
#: likelihood evaluations (~60 ms less; benchmarks/stats.py) and the estimates move by < 1e-4 of
#: their SE, the SEs by < 3e-4 of themselves: far below what is reported (tests/stats compare with
#: statsmodels' own fit at its default tolerance).
BFGS_GTOL = 1e-4
#: Smallest variance ratio the optimiser starts from.
MIN_START_RATIO = 0.05


def formula(levels: Sequence[str]) -> str:
    """The model in lme4 notation for the given levels (reference first)."""
    terms = " + ".join(["1", *levels[1:]])
    return f"relative_susceptibility_ppm ~ {terms} + (1 | subject)"


def start_params(y: np.ndarray, design: np.ndarray, codes: np.ndarray) -> MixedLMParams:
    """Where the REML search starts: OLS fixed effects, ANOVA variance ratio (see the module notes).

    Parameters
    ----------
    y : (N,) float array
        Values (any unit: the ratio is unit-free).
    design : (N, K) float array
        Fixed-effects design matrix.
    codes : (N,) int array
        Patient index 0 .. P-1 of each value (every index used).
    """
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    residual = y - design @ beta
    sizes = np.bincount(codes)
    n, k = residual.size, sizes.size
    means = np.bincount(codes, weights=residual) / sizes
    between = float(np.sum(sizes * (means - residual.mean()) ** 2)) / (k - 1)
    within = float(np.sum((residual - means[codes]) ** 2)) / max(n - k, 1)
    n0 = (n - float(np.sum(sizes**2)) / n) / (k - 1)
    ratio = (between - within) / n0 / within if within > 0 else 1.0
    return MixedLMParams.from_components(beta, cov_re=np.array([[max(ratio, MIN_START_RATIO)]]))


def fit_mixed_model(
    values_ppm: Sequence[float] | np.ndarray,
    kinds: Sequence[str],
    subjects: Sequence[str],
    *,
    levels: Sequence[str] = ("wm", "cortical"),
    confidence: float = 0.95,
) -> MixedModelResult:
    """Fit the random-intercept model to the values whose kind is one of ``levels``.

    Parameters
    ----------
    values_ppm : (N,) float array-like
        Relative susceptibility of each lesion or portion, ppm (finite). Not modified.
    kinds : (N,) sequence of str
        Kind of each value, one of :data:`KINDS`; values of kinds not in ``levels`` are left out.
    subjects : (N,) sequence of str or int
        Patient of each value (the random intercept's grouping).
    levels : sequence of str
        Kinds in the model; the first is the reference (the intercept). Levels without any value
        are dropped with a note.
    confidence : float
        Level of the coefficients' Wald confidence intervals.

    Returns
    -------
    MixedModelResult
        ``fitted=False`` with a note when there are fewer than 2 patients, no patient with 2 or
        more values, no more values than fixed effects + 1, all values equal, or the reference
        level is absent; otherwise the fit, whether or not it converged (see ``converged`` and
        ``warnings``).
    """
    levels = tuple(levels)
    if not levels or any(level not in KINDS for level in levels) or len(set(levels)) != len(levels):
        raise ValueError(f"levels must be distinct kinds among {KINDS}, got {levels}")
    y_all = np.asarray(values_ppm, dtype=np.float64)
    kind_all = np.asarray(kinds, dtype=object)
    subject_all = np.asarray(subjects)
    keep = np.zeros(y_all.size, dtype=bool)
    for level in levels:
        keep |= kind_all == level
    y, kind, subject = y_all[keep], kind_all[keep], subject_all[keep]
    notes: list[str] = []
    present = tuple(level for level in levels if np.any(kind == level))
    for level in levels:
        if level not in present:
            notes.append(f"no {level} values: that term is left out")
    _, codes, per_patient = np.unique(subject, return_inverse=True, return_counts=True)
    n_obs, n_patients = int(y.size), int(per_patient.size)

    def unfitted(reason: str) -> MixedModelResult:
        return MixedModelResult(formula(present or levels), False, METHOD, present, n_obs, n_patients,
                                notes=(*notes, reason))

    if levels[0] not in present:
        return unfitted(f"not fitted: no {levels[0]} values for the reference level")
    if n_patients < 2:
        return unfitted(f"not fitted: {n_patients} patient(s); a random intercept needs at least 2")
    if not np.any(per_patient >= 2):
        return unfitted("not fitted: no patient has 2 or more values, so patient and residual variance cannot be told apart")
    if n_obs <= len(present) + 1:
        return unfitted(f"not fitted: {n_obs} values for {len(present)} fixed effects and 2 variances")
    if np.ptp(y) == 0:
        return unfitted("not fitted: all values are equal (SD 0)")

    design = np.column_stack([np.ones(n_obs)] + [(kind == level).astype(np.float64) for level in present[1:]])
    scale = float(np.std(y))
    start = start_params(y / scale, design, codes)
    model = MixedLM(y / scale, design, groups=codes)
    fit, optimiser, caught, failure = None, "", [], ""
    for optimiser in OPTIMISERS:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            try:
                options = {"gtol": BFGS_GTOL} if optimiser == "bfgs" else {}
                fit = model.fit(reml=True, start_params=start, method=optimiser, **options)
            except (np.linalg.LinAlgError, ValueError) as exc:
                fit, failure = None, f"{optimiser}: {exc}"
        caught = list(dict.fromkeys(str(w.message).strip() for w in raised))
        if fit is not None and fit.converged:
            break
        notes.append(f"{optimiser} did not converge" + (f" ({failure})" if fit is None else "")
                     + (f"; trying {OPTIMISERS[OPTIMISERS.index(optimiser) + 1]}" if optimiser != OPTIMISERS[-1] else ""))
    if fit is None:
        return unfitted(f"not fitted: statsmodels failed ({failure})")

    k = design.shape[1]
    ci = np.asarray(fit.conf_int(alpha=1 - confidence))[:k]
    z = np.asarray(fit.tvalues)[:k]
    p = np.asarray(fit.pvalues)[:k]
    names = ("intercept", *present[1:])
    coefficients = tuple(
        Coefficient(
            name=names[i],
            estimate_ppm=finite_or_none(fit.fe_params[i] * scale),
            se_ppm=finite_or_none(fit.bse_fe[i] * scale),
            z=finite_or_none(z[i]),
            p=finite_or_none(p[i]),
            ci_low_ppm=finite_or_none(ci[i, 0] * scale),
            ci_high_ppm=finite_or_none(ci[i, 1] * scale),
        )
        for i in range(k)
    )
    if any(c.se_ppm is None for c in coefficients):
        notes.append("some standard errors are undefined (singular Hessian): see warnings")
    return MixedModelResult(
        formula=formula(present),
        fitted=True,
        method=f"{METHOD}, optimiser {optimiser}",
        levels=present,
        n_obs=n_obs,
        n_patients=n_patients,
        coefficients=coefficients,
        random_intercept_var_ppm2=finite_or_none(np.asarray(fit.cov_re)[0, 0] * scale**2),
        residual_var_ppm2=finite_or_none(fit.scale * scale**2),
        converged=bool(fit.converged),
        warnings=tuple(caught),
        notes=tuple(notes),
    )
