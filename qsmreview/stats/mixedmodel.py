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

Where statsmodels starts its search decides the cost: every evaluation of the likelihood, its
gradient or Hessian is a Python loop over the patients (~30 ms for 500). :func:`start_params` puts
the start at the REML estimate itself, found on the profile likelihood of the one variance ratio
g = s_u^2 / s_e^2, which for a random intercept has a closed form per patient (below) and costs
~1 ms for 10,000 values. statsmodels then evaluates its own likelihood and gradient there, stops
when the gradient is below its tolerance (usually at once), and computes everything reported
(estimates, Hessian, SEs, p) itself; from statsmodels' default start (g = 1) it needs 10
likelihood and gradient evaluations on the benchmark's table instead of 1. With ``V_i = s_e^2 (I + g 1 1')`` for patient
i's ``n_i`` values, ``c_i = g / (1 + n_i g)``, ``S_i`` the column sums of patient i's rows of the
design X and ``t_i`` the sum of its values:

    X'V^-1X s_e^2 = X'X - sum_i c_i S_i S_i',   X'V^-1y s_e^2 = X'y - sum_i c_i S_i t_i,
    -2 l_R(g) = sum_i log(1 + n_i g) + log det(X'V^-1X s_e^2) + (N - p) log(r'V^-1r s_e^2) + const

(Harville 1977; s_e^2 profiled out, ``r = y - X beta(g)``), maximised over log g in
[-25, 12] by bounded Brent (``scipy.optimize.minimize_scalar``).

BFGS is tried first; if it does not converge (typically when the between-patient variance is
estimated at 0, on the boundary), Powell's derivative-free search is tried from the same start
(:data:`OPTIMISERS`). The result records which optimiser it comes from and whether it converged.

References
----------
Harville DA. Maximum likelihood approaches to variance component estimation and to related
problems. J Am Stat Assoc 1977;72:320-338 (the restricted likelihood).
Lindstrom MJ, Bates DM. Newton-Raphson and EM algorithms for linear mixed-effects models for
repeated-measures data. J Am Stat Assoc 1988;83:1014-1022 (the likelihood statsmodels maximises).
Seabold S, Perktold J. statsmodels: econometric and statistical modeling with Python. Proc 9th
Python in Science Conference, 2010.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

from qsmreview.stats.results import Coefficient, MixedModelResult, finite_or_none

#: Kinds of value the model knows, the reference (WM lesions) first.
KINDS = ("wm", "cortical", "mixed_wm", "mixed_cortical")
METHOD = "REML, statsmodels MixedLM (random intercept per patient)"
#: Optimisers tried in turn until one converges: BFGS, then Powell (derivative-free; from
#: statsmodels' default start it is the one that reaches a between-patient variance of 0, where BFGS
#: on the square-root parametrisation stalls; from :func:`start_params` it is only a fallback).
OPTIMISERS = ("bfgs", "powell")
#: Bounds of the search for log g (g = s_u^2 / s_e^2) in :func:`start_params`.
LOG_RATIO_BOUNDS = (-25.0, 12.0)


def formula(levels: Sequence[str]) -> str:
    """The model in lme4 notation for the given levels (reference first)."""
    terms = " + ".join(["1", *levels[1:]])
    return f"relative_susceptibility_ppm ~ {terms} + (1 | subject)"


def start_params(y: np.ndarray, design: np.ndarray, codes: np.ndarray) -> MixedLMParams:
    """Where statsmodels' search starts: the REML estimate from the profile likelihood in g.

    Parameters
    ----------
    y : (N,) float array
        Values (any unit: g is unit-free).
    design : (N, K) float array
        Fixed-effects design matrix, full column rank.
    codes : (N,) int array
        Patient index 0 .. P-1 of each value (every index used).

    Returns
    -------
    MixedLMParams
        Fixed effects ``beta(g)`` and ``cov_re = [[g]]`` (statsmodels' profile parametrisation:
        the random-intercept variance relative to the residual variance), g the maximiser of the
        restricted likelihood (module notes); g = 1 (statsmodels' default) with least-squares
        fixed effects when the fixed effects fit the values exactly or that likelihood is not
        finite anywhere.
    """
    sizes = np.bincount(codes).astype(np.float64)
    totals = np.bincount(codes, weights=y, minlength=sizes.size)
    sums = np.column_stack([np.bincount(codes, weights=column, minlength=sizes.size) for column in design.T])
    xtx, xty, yty = design.T @ design, design.T @ y, float(y @ y)
    n, p = y.size, design.shape[1]
    ols = np.linalg.lstsq(design, y, rcond=None)[0]
    # a residual this small is rounding error: the fixed effects (or patients) fit exactly
    tiny = 1e-12 * float(np.sum((y - y.mean()) ** 2))
    if float(np.sum((y - design @ ols) ** 2)) <= tiny:
        return MixedLMParams.from_components(ols, cov_re=np.array([[1.0]]))

    def solve(g: float) -> tuple[np.ndarray, np.ndarray, float]:
        c = g / (1.0 + sizes * g)
        a = xtx - sums.T @ (c[:, None] * sums)
        b = xty - sums.T @ (c * totals)
        beta = np.linalg.solve(a, b)
        return a, beta, yty - float(c @ totals**2) - float(beta @ b)

    def minus_twice_reml(log_g: float) -> float:
        g = float(np.exp(log_g))
        a, _, residual = solve(g)
        sign, logdet = np.linalg.slogdet(a)
        if residual <= tiny or sign <= 0:
            return np.inf
        return float(np.sum(np.log1p(sizes * g)) + logdet + (n - p) * np.log(residual))

    with np.errstate(invalid="ignore", over="ignore"):  # Brent's arithmetic on an infinite value
        found = minimize_scalar(minus_twice_reml, bounds=LOG_RATIO_BOUNDS, method="bounded",
                                options={"xatol": 1e-10})
    if not np.isfinite(found.fun):
        return MixedLMParams.from_components(ols, cov_re=np.array([[1.0]]))
    g = float(np.exp(found.x))
    return MixedLMParams.from_components(solve(g)[1], cov_re=np.array([[g]]))


def fit_mixed_model(
    values_ppm: Sequence[float] | np.ndarray,
    kinds: Sequence[str] | np.ndarray,
    subjects: Sequence[str] | Sequence[int] | np.ndarray,
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
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        start = start_params(y / scale, design, codes)
        model = MixedLM(y / scale, design, groups=codes)
        fit, optimiser, failure = None, "", ""
        for optimiser in OPTIMISERS:
            del raised[:]  # keep the warnings of the fit reported only
            try:
                fit = model.fit(reml=True, start_params=start, method=optimiser)
            except (np.linalg.LinAlgError, ValueError) as exc:
                fit, failure = None, f"{optimiser}: {exc}"
            if fit is not None and fit.converged:
                break
            notes.append(f"{optimiser} did not converge" + (f" ({failure})" if fit is None else "")
                         + (f"; trying {OPTIMISERS[OPTIMISERS.index(optimiser) + 1]}" if optimiser != OPTIMISERS[-1] else ""))
        if fit is None:
            return unfitted(f"not fitted: statsmodels failed ({failure})")
        # statsmodels computes SEs, z, p and intervals lazily: inside, so their warnings are kept
        k = design.shape[1]
        estimate, se = np.asarray(fit.fe_params)[:k], np.asarray(fit.bse_fe)[:k]
        ci = np.asarray(fit.conf_int(alpha=1 - confidence))[:k]
        z, p = np.asarray(fit.tvalues)[:k], np.asarray(fit.pvalues)[:k]
        variances = float(np.asarray(fit.cov_re)[0, 0]), float(fit.scale)
    caught = tuple(dict.fromkeys(str(w.message).strip() for w in raised))
    names = ("intercept", *present[1:])
    coefficients = tuple(
        Coefficient(
            name=names[i],
            estimate_ppm=finite_or_none(estimate[i] * scale),
            se_ppm=finite_or_none(se[i] * scale),
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
        random_intercept_var_ppm2=finite_or_none(variances[0] * scale**2),
        residual_var_ppm2=finite_or_none(variances[1] * scale**2),
        converged=bool(fit.converged),
        warnings=caught,
        notes=tuple(notes),
    )
