"""Agreement between raters, and of each rater with the consensus: lesion detection, voxel
overlap and class votes.

**Lesion-wise detection** follows the MSSEG-2016 evaluation (Commowick et al. 2018), as
animaSegPerfAnalyzer computes it; the description here is ours, from the paper and the tool's
documented options. Lesions are the 6-connected components (face neighbours) of each mask;
components of at most ``min_volume_mm3`` (3 mm^3, anima ``-v``) are dropped from both masks
first (their voxels count as background). A lesion L of the *reference* mask is **detected** by
the *tested* mask when both hold:

1. more than ``alpha`` (10 %, anima ``-x``) of L's voxels are covered by tested lesions;
2. going through the tested lesions that overlap L from the largest overlap down, until they
   account for ``gamma`` (65 %, anima ``-z``) of L's covered voxels, none has more than ``beta``
   (70 %, anima ``-y``) of its own voxels outside every reference lesion (a huge tested blob that
   grazes L does not detect it).

Sensitivity = detected reference lesions / reference lesions; PPV = tested lesions "detected"
by the reference with the same rule, roles swapped / tested lesions; F1 = 2 PPV Sens / (PPV +
Sens) (0 when both are 0). The measures are not symmetric: the pair (A, B) takes A as reference.
A score whose denominator is 0 (no lesion at all) is None.

**Voxel Dice** = 2 |A and B| / (|A| + |B|) (None when both masks are empty).

**Class votes**: Fleiss' kappa (Fleiss 1971) of the raters' votes (wm, cortical, mixed) over the
consensus lesions every rater voted on (Fleiss' kappa needs the same number of ratings per
lesion), computed by ``statsmodels.stats.inter_rater.fleiss_kappa`` on the table of
``aggregate_raters``. None with fewer than two such lesions or when kappa is undefined (every
vote the same class: expected agreement 1).

No Django, no file I/O.

References
----------
Commowick O, Istace A, Kain M, et al. Objective evaluation of multiple sclerosis lesion
segmentation using a data management and processing infrastructure. Sci Rep 2018;8:13650.
doi:10.1038/s41598-018-31911-7
Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378-382.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qsmreview.lesions.components import CONNECTIVITY, label_lesions, nonzero_box
from qsmreview.lesions.params import ConsensusParams

#: Class categories for Fleiss' kappa, in column order.
CATEGORIES = ("wm", "cortical", "mixed")


@dataclass(frozen=True)
class Detection:
    """Lesion-wise detection of a tested mask against a reference mask (MSSEG rule).

    ``n_reference`` / ``n_tested`` count lesions above the size floor; ``detected`` reference
    lesions detected; ``tested_true`` tested lesions that the reference detects (roles swapped).
    ``sensitivity``, ``ppv`` and ``f1`` are None when undefined.
    """

    n_reference: int
    n_tested: int
    detected: int
    tested_true: int
    sensitivity: float | None
    ppv: float | None
    f1: float | None


def _components(mask: np.ndarray, min_voxels: float) -> tuple[np.ndarray, int]:
    """6-connected components with more than ``min_voxels`` voxels, relabelled 1..n (int32)."""
    labels, n = label_lesions(mask)
    if n == 0:
        return labels, 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes > min_voxels
    keep[0] = False
    if keep[1:].all():
        return labels, n
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[labels], int(keep.sum())


def _table(ref: tuple[np.ndarray, int], test: tuple[np.ndarray, int]) -> np.ndarray:
    (a, n_ref), (b, n_test) = ref, test
    # Only voxels in either mask can fall outside cell [0, 0], which is what remains.
    where = np.flatnonzero((a.ravel() > 0) | (b.ravel() > 0))
    flat = a.ravel()[where].astype(np.int64) * (n_test + 1) + b.ravel()[where]
    table = np.bincount(flat, minlength=(n_ref + 1) * (n_test + 1)).reshape(n_ref + 1, n_test + 1)
    table[0, 0] = a.size - where.size
    return table


def overlap_table(reference: np.ndarray, tested: np.ndarray, *, min_voxels: float = 0.0) -> np.ndarray:
    """(n_ref + 1, n_test + 1) voxel counts: row 0 / column 0 are the background of each mask,
    cell [i, j] the voxels of reference lesion i in tested lesion j (components of more than
    ``min_voxels`` voxels, 6-connected)."""
    return _table(_components(np.asarray(reference) != 0, min_voxels), _components(np.asarray(tested) != 0, min_voxels))


def _detected(table: np.ndarray, alpha: float, beta: float, gamma: float) -> int:
    """Reference lesions (rows 1..) detected by the tested lesions (columns 1..)."""
    column_total = table.sum(axis=0)
    found = 0
    for i in range(1, table.shape[0]):
        covered = int(table[i, 1:].sum())
        total = covered + int(table[i, 0])
        if total == 0 or not covered / total > alpha:
            continue
        ok, share = True, 0.0
        for j in 1 + np.argsort(-table[i, 1:], kind="stable"):
            if share >= gamma or table[i, j] == 0:
                break
            if table[0, j] / column_total[j] > beta:
                ok = False
                break
            share += table[i, j] / covered
        found += ok
    return found


def detection(
    reference: np.ndarray,
    tested: np.ndarray,
    voxel_size: Sequence[float],
    *,
    params: ConsensusParams | None = None,
) -> Detection:
    """Lesion-wise detection scores of ``tested`` against ``reference`` (module docstring).

    Parameters
    ----------
    reference, tested : (X, Y, Z) arrays
        Binary masks (non-zero = lesion) on one grid. Not modified.
    voxel_size : (3,) floats
        mm per axis: the size floor ``agreement_min_volume_mm3`` is converted to voxels with it.
    params : ConsensusParams, optional
        ``agreement_alpha``, ``agreement_beta``, ``agreement_gamma``,
        ``agreement_min_volume_mm3``.
    """
    p = params or ConsensusParams()
    min_voxels = _min_voxels(voxel_size, p)
    return _detection(overlap_table(reference, tested, min_voxels=min_voxels), p)


def _min_voxels(voxel_size: Sequence[float], p: ConsensusParams) -> float:
    return p.agreement_min_volume_mm3 / float(np.prod([float(v) for v in voxel_size]))


def _detection(table: np.ndarray, p: ConsensusParams) -> Detection:
    n_ref, n_test = table.shape[0] - 1, table.shape[1] - 1
    detected = _detected(table, p.agreement_alpha, p.agreement_beta, p.agreement_gamma)
    tested_true = _detected(table.T, p.agreement_alpha, p.agreement_beta, p.agreement_gamma)
    sens = detected / n_ref if n_ref else None
    ppv = tested_true / n_test if n_test else None
    if sens is None or ppv is None:
        f1 = None
    else:
        f1 = 2 * sens * ppv / (sens + ppv) if sens + ppv > 0 else 0.0
    return Detection(n_ref, n_test, detected, tested_true, sens, ppv, f1)


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Voxel Dice 2 |A & B| / (|A| + |B|); None when both masks are empty."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return None if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def fleiss_kappa_of_votes(votes: Mapping[Any, Mapping[str, str]], raters: Sequence[str]) -> dict[str, Any]:
    """Fleiss' kappa of the class votes over the lesions every rater voted on.

    Parameters
    ----------
    votes : mapping lesion -> {rater: vote}
        Votes "wm", "cortical" or "mixed" ("" or a missing rater = no vote).
    raters : the raters who take part.

    Returns
    -------
    dict
        ``kappa`` (float or None), ``n_lesions`` (lesions used), ``n_raters``, ``categories``.
    """
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    rows = [
        [CATEGORIES.index(v[r]) for r in raters]
        for v in votes.values()
        if all(v.get(r) in CATEGORIES for r in raters)
    ]
    kappa: float | None = None
    if len(rows) >= 2 and len(raters) >= 2:
        table, _ = aggregate_raters(np.asarray(rows), n_cat=len(CATEGORIES))
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(fleiss_kappa(table, method="fleiss"))
        kappa = value if math.isfinite(value) else None
    return {"kappa": kappa, "n_lesions": len(rows), "n_raters": len(raters), "categories": list(CATEGORIES)}


def _scores(
    reference: tuple[np.ndarray, int], tested: tuple[np.ndarray, int], dice_value: float | None, p: ConsensusParams
) -> dict[str, Any]:
    d = _detection(_table(reference, tested), p)
    return {
        "n_reference": d.n_reference,
        "n_tested": d.n_tested,
        "detected": d.detected,
        "tested_true": d.tested_true,
        "sensitivity": d.sensitivity,
        "ppv": d.ppv,
        "f1": d.f1,
        "dice": dice_value,
    }


def session_agreement(
    masks: Mapping[str, np.ndarray],
    consensus: np.ndarray,
    voxel_size: Sequence[float],
    *,
    votes: Mapping[Any, Mapping[str, str]] | None = None,
    params: ConsensusParams | None = None,
) -> dict[str, Any]:
    """Every agreement figure of a session, with the parameters that produced them.

    Parameters
    ----------
    masks : mapping rater -> (X, Y, Z) bool
    consensus : (X, Y, Z) int or bool
        The counted consensus lesions (non-zero).
    voxel_size : (3,) floats, mm.
    votes : mapping lesion -> {rater: vote}, optional
        Class votes on the consensus lesions.
    params : ConsensusParams, optional

    Returns
    -------
    dict
        ``parameters`` (alpha, beta, gamma, min_volume_mm3, connectivity, voxel_size_mm),
        ``pairs`` (one dict per rater pair, first rater as reference: ``reference``, ``tested``
        and the scores of :func:`detection` plus ``dice``), ``vs_consensus`` (the consensus as
        reference, each rater tested) and ``class_votes`` (:func:`fleiss_kappa_of_votes`).
    """
    p = params or ConsensusParams()
    raters = list(masks)
    # Every score depends only on the voxels near a lesion: work in the box around all of them.
    box = nonzero_box(np.logical_or.reduce([np.asarray(consensus) != 0, *(np.asarray(m) != 0 for m in masks.values())]))
    if box is not None:
        masks = {r: np.asarray(m)[box] for r, m in masks.items()}
        consensus = np.asarray(consensus)[box]
    # Each mask labelled once; Dice on the whole masks (the size floor is for detection only).
    floor = _min_voxels(voxel_size, p)
    parts = {r: _components(np.asarray(m) != 0, floor) for r, m in masks.items()}
    agreed = _components(np.asarray(consensus) != 0, floor)
    pairs = [
        {"reference": a, "tested": b, **_scores(parts[a], parts[b], dice(masks[a], masks[b]), p)}
        for a, b in itertools.combinations(raters, 2)
    ]
    vs_consensus = [
        {"reference": "consensus", "tested": r, **_scores(agreed, parts[r], dice(consensus, masks[r]), p)} for r in raters
    ]
    return {
        "parameters": {
            "alpha": p.agreement_alpha,
            "beta": p.agreement_beta,
            "gamma": p.agreement_gamma,
            "min_volume_mm3": p.agreement_min_volume_mm3,
            "connectivity": CONNECTIVITY,
            "voxel_size_mm": [float(v) for v in voxel_size],
        },
        "pairs": pairs,
        "vs_consensus": vs_consensus,
        "class_votes": fleiss_kappa_of_votes(votes or {}, raters),
    }
