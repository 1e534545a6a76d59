"""Class of each consensus lesion by its share of cortex, and the portions that are measured.

Tissue labels are FSL FAST codes: 0 background, 1 CSF, 2 GM, 3 WM (the study's tissue
classification on the T2* grid). A lesion's **cortical fraction** is

    GM voxels / (GM voxels + WM voxels)

of its voxels (CSF and background voxels count for neither). With the defaults it is

- **cortical** when the fraction is >= 0.75 (``cortical_fraction_cortical``; exactly 75 % is
  cortical), measured in its GM voxels;
- **wm** when it is <= 0.25 (``cortical_fraction_wm``; exactly 25 % is white matter), measured in
  its WM voxels;
- **mixed** in between, measured as two **portions**: the cortical portion (its GM voxels) and
  the WM portion (its WM voxels), each against a reference in its own tissue.

A lesion with no GM or WM voxel (all CSF or background) is ``"unclassified"`` and not measured.
The raters' majority class vote (``vote_majority``) is kept beside the rule's class, with a flag
when they differ: the rule decides, the votes are shown. No Django, no file I/O.

References
----------
Kilsdonk ID, Jonkman LE, Klaver R, et al. Increased cortical grey matter lesion detection in
multiple sclerosis with 7 T MRI: a post-mortem verification study. Brain 2016;139:1472-1481
(cortical lesion types: leukocortical lesions span cortex and white matter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams

#: FSL FAST codes.
BACKGROUND, CSF, GM, WM = 0, 1, 2, 3
TISSUE_CODES = (BACKGROUND, CSF, GM, WM)
#: Lesion classes, and the class of a lesion with no GM or WM voxel.
CLASSES = ("wm", "cortical", "mixed")
UNCLASSIFIED = "unclassified"
#: Portion name -> the tissue code it is measured in.
PORTION_TISSUE = {"wm": WM, "cortical": GM}


@dataclass(frozen=True)
class LesionClass:
    """One lesion's class.

    Attributes
    ----------
    lesion : id in the lesion label map.
    n_voxels : all its voxels.
    gm_voxels, wm_voxels : its voxels labelled GM (2) and WM (3).
    cortical_fraction : GM / (GM + WM), NaN when both are 0.
    lesion_type : "wm", "cortical", "mixed" or "unclassified".
    portions : the portions measured: ("wm",), ("cortical",), ("cortical", "wm") or ().
    vote_majority : the class most raters voted for ("" without a strict plurality).
    class_disagreement : True when a majority vote exists and differs from the rule's class.
    rule_type : the rule's class; differs from ``lesion_type`` only when a reviewer's decision
        overrode it (``overrides`` of :func:`classify_lesions`).
    """

    lesion: int
    n_voxels: int
    gm_voxels: int
    wm_voxels: int
    cortical_fraction: float
    lesion_type: str
    portions: tuple[str, ...]
    vote_majority: str
    class_disagreement: bool
    rule_type: str = ""


def check_tissue(tissue: np.ndarray, shape: Sequence[int] | None = None) -> np.ndarray:
    """The tissue labels as uint8, checked to be FSL FAST codes 0..3 on the expected grid.

    Raises
    ------
    LesionInputError
        Not 3-D, another shape, or a value other than 0, 1, 2, 3.
    """
    arr = np.asarray(tissue)
    if arr.ndim != 3:
        raise LesionInputError(f"tissue labels must be 3-D, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise LesionInputError(f"tissue labels have shape {arr.shape}, the masks {tuple(shape)}")
    if arr.dtype == np.uint8:
        bad = arr > WM
    elif np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isin(arr, TISSUE_CODES)
    else:
        raise LesionInputError(f"tissue labels must be numbers, got {arr.dtype}")
    if bad.any():
        values = np.unique(arr[bad])[:5]
        raise LesionInputError(
            "tissue labels must be FSL FAST codes 0 background, 1 CSF, 2 GM, 3 WM; found "
            + ", ".join(str(v.item()) for v in values)
        )
    return arr if arr.dtype == np.uint8 else arr.astype(np.uint8)


def lesion_class(fraction: float, params: ConsensusParams | None = None) -> str:
    """The class of a cortical fraction: >= 0.75 cortical, <= 0.25 wm, else mixed (defaults)."""
    p = params or ConsensusParams()
    if not np.isfinite(fraction):
        return UNCLASSIFIED
    if fraction >= p.cortical_fraction_cortical:
        return "cortical"
    if fraction <= p.cortical_fraction_wm:
        return "wm"
    return "mixed"


def majority_vote(votes: Mapping[str, str] | Sequence[str]) -> str:
    """The class with the most votes ("" when none, or when the top count is tied)."""
    values = [v for v in (votes.values() if isinstance(votes, Mapping) else votes) if v]
    counts = Counter(values).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return ""
    return counts[0][0]


def classify_lesions(
    lesion_labels: np.ndarray,
    tissue: np.ndarray,
    *,
    votes: Mapping[int, Mapping[str, str]] | None = None,
    params: ConsensusParams | None = None,
    overrides: Mapping[int, str] | None = None,
) -> dict[int, LesionClass]:
    """Class every lesion of a label map by its cortical fraction.

    Parameters
    ----------
    lesion_labels : (X, Y, Z) int array
        0 = no lesion, k = lesion k. Not modified.
    tissue : (X, Y, Z) uint8
        FSL FAST codes (checked by :func:`check_tissue`).
    votes : mapping lesion id -> {rater: vote}, optional
        The raters' class votes, for ``vote_majority``.
    params : ConsensusParams, optional
    overrides : mapping lesion id -> class, optional
        A reviewer's decided class ("wm", "cortical" or "mixed"), which then sets the portions
        measured (a lesion decided WM is measured in its WM voxels, and so on); the rule's class
        stays in ``rule_type``.

    Returns
    -------
    dict lesion id -> LesionClass, in id order.

    Raises
    ------
    LesionInputError
        An override that is not a class.
    """
    p = params or ConsensusParams()
    labels = np.asarray(lesion_labels)
    t = check_tissue(tissue, labels.shape)
    out: dict[int, LesionClass] = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == index
        codes = np.bincount(t[box][inside], minlength=4)
        gm, wm = int(codes[GM]), int(codes[WM])
        fraction = gm / (gm + wm) if gm + wm else float("nan")
        rule = lesion_class(fraction, p)
        kind = (overrides or {}).get(index, rule)
        if index in (overrides or {}) and kind not in CLASSES:
            raise LesionInputError(f"lesion {index}: decided class {kind!r} is not one of {', '.join(CLASSES)}")
        portions = {"wm": ("wm",), "cortical": ("cortical",), "mixed": ("cortical", "wm")}.get(kind, ())
        vote = majority_vote((votes or {}).get(index, {}))
        out[index] = LesionClass(
            lesion=index,
            n_voxels=int(inside.sum()),
            gm_voxels=gm,
            wm_voxels=wm,
            cortical_fraction=float(fraction),
            lesion_type=kind,
            portions=portions,
            vote_majority=vote,
            class_disagreement=bool(vote) and vote != rule,
            rule_type=rule,
        )
    return out
