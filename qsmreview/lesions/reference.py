"""Reference ROIs: normal-appearing tissue of the same class around each lesion (or portion).

QSM values are relative (the map's zero is arbitrary), so each lesion is measured against tissue
next to it, as Wisnieff et al. (2015) measured white matter lesions against a band of
normal-appearing white matter around them. For each lesion, or each portion of a mixed lesion
(:mod:`qsmreview.lesions.classify`), the reference ROI is, on the **central slice** only:

- the central slice is the axial slice (third array axis, the T2* slice) holding the largest
  cross-section of the lesion or portion (ties: the slice nearest its centroid, then the lower);
- voxels within ``reference_max_distance_vox`` (10) voxels of the lesion's cross-section on that
  slice (in-plane Euclidean distance, in voxels);
- of the portion's own tissue: WM (FAST 3) for a WM lesion or portion (a donut of white matter),
  GM (FAST 2) for a cortical one. For cortex only GM connected in-plane (4-connectivity) to the
  ring just beyond the gap is kept, so the reference is the adjacent cortex (the ribbon continuing
  on either side of the lesion), not deep grey matter or another gyrus that happens to be near;
  if no such GM exists all GM in reach is used and the ROI is flagged ``not_adjacent``;
- never within ``reference_gap_vox`` (2) voxels (3-D Euclidean distance, in voxels) of any
  consensus lesion or any rater's mark, so no lesion voxel, nor the uncertain boundary around it,
  enters a reference;
- inside the (already eroded) QSM mask when one is given.

A voxel within reach of two lesions' ROIs goes to the nearer lesion (ties: the lower ROI id).
An ROI with fewer than ``reference_min_voxels`` (20) voxels is flagged ``small`` (``empty``
when it has none); it is still measured.

**ROI ids.** One label map holds every ROI: ``roi = 10 * lesion + code`` with code 1 for the WM
portion and 2 for the cortical portion (:func:`roi_id`, :func:`roi_parts`). Lesion 7's WM
reference is 71, its cortical reference 72; a WM lesion has only 71, a cortical one only 72.

No Django, no file I/O.

References
----------
Wisnieff C, Ramanan S, Olesik J, Gauthier S, Wang Y, Pitt D. Quantitative susceptibility mapping
(QSM) of white matter multiple sclerosis lesions: interpreting positive susceptibility and the
presence of iron. Magn Reson Med 2015;74:564-570. doi:10.1002/mrm.25420
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from qsmreview.lesions.classify import PORTION_TISSUE, LesionClass
from qsmreview.lesions.params import ConsensusParams

#: Portion -> its code in an ROI id.
PORTION_CODE = {"wm": 1, "cortical": 2}
_CODE_PORTION = {v: k for k, v in PORTION_CODE.items()}
_PLANE_4 = ndimage.generate_binary_structure(2, 1)


def roi_id(lesion: int, portion: str) -> int:
    """The id of lesion ``lesion``'s ``portion`` ("wm" or "cortical") ROI: 10 * lesion + code."""
    return 10 * int(lesion) + PORTION_CODE[portion]


def roi_parts(roi: int) -> tuple[int, str]:
    """(lesion, portion) of an ROI id (inverse of :func:`roi_id`)."""
    lesion, code = divmod(int(roi), 10)
    if lesion < 1 or code not in _CODE_PORTION:
        raise ValueError(f"{roi} is not an ROI id (10 * lesion + 1 for wm or 2 for cortical)")
    return lesion, _CODE_PORTION[code]


@dataclass(frozen=True)
class References:
    """The reference ROIs of a session.

    Attributes
    ----------
    labels : (X, Y, Z) int32
        0 elsewhere, :func:`roi_id` for each ROI's voxels.
    info : dict roi id -> dict
        ``lesion``, ``portion``, ``central_slice`` (index on the third axis), ``n_voxels`` and
        ``flag`` ("" when usable; else a comma-separated list of ``empty``, ``small``,
        ``not_adjacent``).
    """

    labels: np.ndarray
    info: dict[int, dict[str, Any]]


def central_slice(portion: np.ndarray, k0: int = 0) -> int:
    """The index along the third axis with the largest cross-section of ``portion`` (a bool
    array, whose first slice is slice ``k0`` of the grid); ties: nearest its centroid, then lower."""
    areas = portion.sum(axis=(0, 1))
    best = np.flatnonzero(areas == areas.max())
    centroid = float((areas * np.arange(areas.size)).sum() / areas.sum())
    return k0 + int(min(best, key=lambda k: (abs(k - centroid), k)))


def _window(box: tuple[slice, ...], reach: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    return tuple(slice(max(b.start - reach, 0), min(b.stop + reach, n)) for b, n in zip(box[:2], shape[:2]))  # type: ignore[return-value]


def reference_rois(
    lesion_labels: np.ndarray,
    tissue: np.ndarray,
    classes: Mapping[int, LesionClass],
    *,
    marked: np.ndarray | None = None,
    qsm_mask: np.ndarray | None = None,
    params: ConsensusParams | None = None,
) -> References:
    """The reference ROI of every lesion or portion (rules in the module docstring).

    Parameters
    ----------
    lesion_labels : (X, Y, Z) int array
        Consensus lesions 0 / 1..n. Not modified.
    tissue : (X, Y, Z) uint8
        FSL FAST codes 0..3 (already checked).
    classes : mapping lesion id -> LesionClass
        From :func:`~qsmreview.lesions.classify.classify_lesions`; which portions to refer.
    marked : (X, Y, Z) bool, optional
        Every voxel any rater marked (the union of the masks): kept out of every ROI with its gap,
        like the consensus lesions.
    qsm_mask : (X, Y, Z) bool, optional
        The eroded QSM mask; ROIs stay inside it.
    params : ConsensusParams, optional

    Returns
    -------
    References
    """
    p = params or ConsensusParams()
    labels = np.asarray(lesion_labels)
    shape = labels.shape
    avoid = labels > 0
    if marked is not None:
        avoid = avoid | np.asarray(marked, dtype=bool)
    reach = int(math.ceil(p.reference_max_distance_vox))
    gap = float(p.reference_gap_vox)
    g = int(math.ceil(gap))
    out = np.zeros(shape, dtype=np.int32)
    best: dict[int, np.ndarray] = {}  # slice k -> in-plane distance of the ROI voxel assigned there
    info: dict[int, dict[str, Any]] = {}
    boxes = ndimage.find_objects(labels)
    for lesion, cls in classes.items():
        box = boxes[lesion - 1] if lesion - 1 < len(boxes) else None
        if box is None:
            continue
        for portion in cls.portions:
            code = PORTION_TISSUE[portion]
            rid = roi_id(lesion, portion)
            body = (labels[box] == lesion) & (tissue[box] == code)
            if not body.any():
                info[rid] = {"lesion": lesion, "portion": portion, "central_slice": None, "n_voxels": 0, "flag": "empty"}
                continue
            k = central_slice(body, box[2].start)
            wx, wy = _window(box, reach + g + 1, shape)
            kz = slice(max(k - g, 0), min(k + g + 1, shape[2]))
            near = avoid[wx, wy, kz]
            # 3-D distance (voxels) to any lesion or mark, on slice k only.
            excluded = ndimage.distance_transform_edt(~near)[:, :, k - kz.start] <= gap
            section = labels[wx, wy, k] == lesion
            distance = ndimage.distance_transform_edt(~section)
            candidate = (distance <= p.reference_max_distance_vox) & (tissue[wx, wy, k] == code) & ~excluded
            if qsm_mask is not None:
                candidate &= qsm_mask[wx, wy, k]
            flags: list[str] = []
            if portion == "cortical" and candidate.any():
                pieces, _ = ndimage.label(candidate, structure=_PLANE_4)
                ring = candidate & (distance <= gap + 2.0)
                touching = np.unique(pieces[ring])
                touching = touching[touching > 0]
                if touching.size:
                    candidate = np.isin(pieces, touching)
                else:
                    flags.append("not_adjacent")
            plane = best.setdefault(k, np.full(shape[:2], np.inf, dtype=np.float32))
            take = candidate & (distance < plane[wx, wy])
            plane[wx, wy][take] = distance[take]
            out[wx, wy, k][take] = rid
            info[rid] = {"lesion": lesion, "portion": portion, "central_slice": k, "n_voxels": 0, "flag": ",".join(flags)}
    counts = np.bincount(out[out > 0].ravel()) if out.any() else np.zeros(1, np.int64)
    for rid, entry in info.items():
        n = int(counts[rid]) if rid < counts.size else 0
        entry["n_voxels"] = n
        flags = [f for f in entry["flag"].split(",") if f and f not in ("empty", "small")]
        if n == 0:
            flags.insert(0, "empty")
        elif n < p.reference_min_voxels:
            flags.insert(0, "small")
        entry["flag"] = ",".join(flags)
    return References(out, dict(sorted(info.items())))
