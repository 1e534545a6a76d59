"""A synthetic lesion table shaped like the reference study's cohort, for demos and tests.

:func:`reference_cohort` builds the reference study's 14 patients with exactly their lesion counts
(:data:`REFERENCE_COUNTS`) and values whose summary statistics equal Table 3 of the study as given
in issue 18 (:data:`REFERENCE_TABLE3`), exactly up to rounding:

- each lesion-level group (WM lesions, cortical lesions, WM and cortical portions of mixed
  lesions) has the reported mean and SD (ddof=1);
- the per-patient WM and cortical means (one per patient) also have the reported mean and SD.

Construction, per type with a per-patient target: patient means ``m_i = mu_p + sd_p z_i`` where
``z`` has mean 0 and SD 1 and a fixed component along the centred lesion counts ``n_i`` (the rest a
normal draw orthogonal to it), chosen so that the lesion-weighted mean of ``m`` is the lesion-level
mean (the reported lesion and patient means differ for cortical lesions: -0.018 vs -0.015), then
within-patient deviations, normal, centred per patient and scaled so that the lesion-level SD is
the reported one. Mixed portions are drawn and standardised to their mean and SD directly. The
draw is repeated (from the same generator) in the rare case that the patient means alone already
spread more than the lesion-level SD allows. Deterministic for a given seed. No file I/O.

The figures are the reference study's, not ours; the values are made up and only their summaries
are real.
"""

from __future__ import annotations

import numpy as np

from qsmreview.stats.table import LesionRow

#: Lesions per patient (cortical, WM, mixed) in the reference study's 14 patients.
REFERENCE_COUNTS: tuple[tuple[int, int, int], ...] = (
    (2, 6, 1), (1, 11, 0), (0, 2, 0), (5, 23, 1), (7, 13, 1), (3, 30, 4), (1, 5, 0),
    (0, 4, 0), (0, 4, 1), (0, 12, 0), (2, 15, 1), (6, 7, 0), (0, 15, 0), (0, 0, 0),
)
#: Table 3 of the reference study (issue 18): group -> (mean ppm, SD ppm, n, reported p).
#: Lesion level: WM 147 lesions, cortical 27, mixed 9 (each with a WM and a cortical portion);
#: per patient: WM 13 patients, cortical 8.
REFERENCE_TABLE3: dict[str, tuple[float, float, int, str]] = {
    "wm_lesions": (0.014, 0.014, 147, "P < 1e-22"),
    "cortical_lesions": (-0.018, 0.013, 27, "P < 1e-7"),
    "mixed_wm_portions": (0.014, 0.018, 9, "P = .043"),
    "mixed_cortical_portions": (-0.009, 0.012, 9, "P = .054"),
    "patient_wm_lesions": (0.014, 0.010, 13, "P = .0004"),
    "patient_cortical_lesions": (-0.015, 0.009, 8, "P = .004"),
}
_MAX_DRAWS = 1000


def subject_name(index: int) -> str:
    """``MS01`` ... ``MS14`` for index 0 ... 13."""
    return f"MS{index + 1:02d}"


def _standardised(rng: np.random.Generator, n: int, mean: float, sd: float) -> np.ndarray:
    z = rng.standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


def _two_level(
    rng: np.random.Generator, counts: np.ndarray, lesion: tuple[float, float], patient: tuple[float, float]
) -> list[np.ndarray]:
    """Values per patient (``counts[i]`` each) with exact lesion- and patient-level mean and SD."""
    has = np.flatnonzero(counts > 0)
    n = counts[has].astype(np.float64)
    total = int(n.sum())
    # z: mean 0 and SD 1 (so m has the patient-level mean and SD), with sum(n z) fixed so that the
    # lesion-weighted mean of m is the lesion-level mean: z = a w + b v, w the centred counts.
    w = n - n.mean()
    a = total * (lesion[0] - patient[0]) / patient[1] / float(w @ w)
    rest = has.size - 1 - a**2 * float(w @ w)
    if rest < 0:
        raise ValueError("the lesion- and patient-level means are too far apart for these counts")
    basis = np.column_stack([np.ones(has.size), w])
    for _ in range(_MAX_DRAWS):
        v = rng.standard_normal(has.size)
        v -= basis @ np.linalg.lstsq(basis, v, rcond=None)[0]  # orthogonal to 1 and to the counts
        z = a * w + np.sqrt(rest / float(v @ v)) * v
        means = patient[0] + patient[1] * z
        between = float(np.sum(n * (means - lesion[0]) ** 2))
        within_target = (total - 1) * lesion[1] ** 2 - between
        if within_target <= 0:
            continue
        deviations = [rng.standard_normal(int(k)) for k in n]
        deviations = [d - d.mean() for d in deviations]
        within = float(sum(np.sum(d**2) for d in deviations))
        if within == 0:
            continue
        factor = np.sqrt(within_target / within)
        out = [np.empty(0)] * counts.size
        for i, m, d in zip(has, means, deviations, strict=True):
            out[i] = m + factor * d
        return out
    raise RuntimeError("could not draw a cohort matching the targets")  # not reached for Table 3


def reference_cohort(seed: int = 0) -> tuple[LesionRow, ...]:
    """The reference study's 14 patients as lesion-table rows (ppm), matching its Table 3.

    Parameters
    ----------
    seed : int
        Seed of the NumPy generator; the same seed gives the same rows.

    Returns
    -------
    tuple of LesionRow
        Subjects ``MS01`` ... ``MS13`` (``MS14`` has no lesion and so no row); per subject the
        cortical lesions, then the WM lesions, then the mixed lesions (two rows each: WM portion,
        then cortical portion), numbered 1, 2, ... within the subject. ``line`` is None.

    Examples
    --------
    >>> rows = reference_cohort()
    >>> len(rows), sum(r.lesion_type == "wm" for r in rows)
    (192, 147)
    """
    rng = np.random.default_rng(seed)
    counts = np.array(REFERENCE_COUNTS)
    wm_mean, wm_sd, _, _ = REFERENCE_TABLE3["wm_lesions"]
    co_mean, co_sd, _, _ = REFERENCE_TABLE3["cortical_lesions"]
    pwm_mean, pwm_sd, _, _ = REFERENCE_TABLE3["patient_wm_lesions"]
    pco_mean, pco_sd, _, _ = REFERENCE_TABLE3["patient_cortical_lesions"]
    cortical = _two_level(rng, counts[:, 0], (co_mean, co_sd), (pco_mean, pco_sd))
    wm = _two_level(rng, counts[:, 1], (wm_mean, wm_sd), (pwm_mean, pwm_sd))
    n_mixed = int(counts[:, 2].sum())
    mixed_wm = _standardised(rng, n_mixed, *REFERENCE_TABLE3["mixed_wm_portions"][:2])
    mixed_cortical = _standardised(rng, n_mixed, *REFERENCE_TABLE3["mixed_cortical_portions"][:2])

    rows: list[LesionRow] = []
    k = 0
    for i, (_, _, n_mix) in enumerate(REFERENCE_COUNTS):
        subject = subject_name(i)
        number = 0
        for kind, values in (("cortical", cortical[i]), ("wm", wm[i])):
            for value in values:
                number += 1
                rows.append(LesionRow(subject, str(number), kind, kind, float(value)))
        for _ in range(n_mix):
            number += 1
            rows.append(LesionRow(subject, str(number), "mixed", "wm", float(mixed_wm[k])))
            rows.append(LesionRow(subject, str(number), "mixed", "cortical", float(mixed_cortical[k])))
            k += 1
    return tuple(rows)
