"""Quality-control proposals, and the pure functions that apply a reviewer's QC edits.

Proposals are only shown; nothing here changes a result until a person applies an edit:

- **cut by the QSM mask**: the share of each lesion's voxels outside the eroded QSM mask
  (:func:`mask_cut_fractions`); a lesion largely outside is measured on few voxels, near the
  brain's edge where background removal errs;
- **likely vessels**: voxels of bright tubes on the QSM map (veins are paramagnetic), found by a
  multiscale Hessian vesselness (Frangi et al. 1998), computed near the lesions only, where a
  vein would bias a lesion or reference mean (:func:`vessel_proposals`).

Edits (:func:`exclude_lesions`, :func:`remove_voxels`, :func:`add_reference_voxels`) return new
label maps; inputs are never modified. No Django, no file I/O.

References
----------
Frangi AF, Niessen WJ, Vincken KL, Viergever MA. Multiscale vessel enhancement filtering.
In: MICCAI 1998, LNCS 1496:130-137. doi:10.1007/BFb0056195
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
from scipy import ndimage

from qsmreview.lesions.errors import LesionInputError

#: Frangi's plate / blob sensitivities (alpha, beta) and the scales (mm) of the vessels sought.
FRANGI_ALPHA = 0.5
FRANGI_BETA = 0.5
VESSEL_SCALES_MM = (0.5, 1.0, 1.5)
#: Vesselness (0..1) above which a voxel is proposed as vessel.
VESSEL_THRESHOLD = 0.5


def mask_cut_fractions(lesion_labels: np.ndarray, qsm_mask: np.ndarray) -> dict[int, float]:
    """Per lesion id, the share (0..1) of its voxels outside ``qsm_mask``."""
    labels = np.asarray(lesion_labels)
    out: dict[int, float] = {}
    for lesion, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == lesion
        n = int(inside.sum())
        out[lesion] = int((inside & ~np.asarray(qsm_mask[box], dtype=bool)).sum()) / n
    return out


def vesselness(image: np.ndarray, voxel_size: Sequence[float], *, scales_mm: Sequence[float] = VESSEL_SCALES_MM) -> np.ndarray:
    """Frangi's vesselness of bright tubes, the maximum over ``scales_mm``.

    At each scale s the Hessian of the image smoothed by a Gaussian of s mm (per-axis sigma in
    voxels = s / voxel size) is scaled by s^2; with eigenvalues |l1| <= |l2| <= |l3|, a bright
    tube has l2, l3 < 0 and l1 ~ 0, and

        V = (1 - exp(-Ra^2 / 2a^2)) exp(-Rb^2 / 2b^2) (1 - exp(-S^2 / 2c^2)),

    Ra = |l2| / |l3|, Rb = |l1| / sqrt(|l2 l3|), S = sqrt(l1^2 + l2^2 + l3^2), a = b = 0.5 and c
    half the largest S at that scale (Frangi's choice). V = 0 where l2 > 0 or l3 > 0.

    Parameters
    ----------
    image : (X, Y, Z) float
        QSM in ppm (bright = paramagnetic); non-finite values count as 0. Not modified.
    voxel_size : (3,) floats, mm.
    scales_mm : vessel radii sought, mm.

    Returns
    -------
    (X, Y, Z) float32 in [0, 1].
    """
    img = np.asarray(image, dtype=np.float32)
    img = np.where(np.isfinite(img), img, np.float32(0.0))  # (NaN outside a QSM mask)
    vs = np.asarray([float(v) for v in voxel_size])
    best = np.zeros(img.shape, dtype=np.float32)
    for s in scales_mm:
        sigma = s / vs
        h: dict[tuple[int, int], np.ndarray] = {}
        for a in range(3):
            for b in range(a, 3):
                order = [0, 0, 0]
                order[a] += 1
                order[b] += 1
                # Derivatives per voxel -> per mm, then scale-normalised by s^2.
                d = ndimage.gaussian_filter(img, sigma, order=order, mode="nearest")
                h[a, b] = d.astype(np.float64) * (s * s / (vs[a] * vs[b]))
        lam = _symmetric_eigenvalues(h)
        del h
        order_abs = np.argsort(np.abs(lam), axis=-1)
        lam = np.take_along_axis(lam, order_abs, axis=-1)
        l1, l2, l3 = lam[..., 0], lam[..., 1], lam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            ra = np.abs(l2) / np.abs(l3)
            rb = np.abs(l1) / np.sqrt(np.abs(l2 * l3))
        strength = np.sqrt((lam**2).sum(axis=-1))
        c = 0.5 * float(strength.max()) if strength.size else 0.0
        if c <= 0:
            continue
        v = (1 - np.exp(-(ra**2) / (2 * FRANGI_ALPHA**2))) * np.exp(-(rb**2) / (2 * FRANGI_BETA**2)) * (
            1 - np.exp(-(strength**2) / (2 * c * c))
        )
        v = np.where((l2 < 0) & (l3 < 0) & np.isfinite(v), v, 0.0)
        best = np.maximum(best, v.astype(np.float32))
    return best


def _symmetric_eigenvalues(h: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Eigenvalues (..., 3) of symmetric 3x3 matrices given by their upper triangle, in closed
    form (the trigonometric solution of the characteristic cubic; Smith, Commun ACM 1961;4:168):
    about ten times faster than a batched LAPACK call on the millions of small matrices here."""
    a00, a01, a02, a11, a12, a22 = h[0, 0], h[0, 1], h[0, 2], h[1, 1], h[1, 2], h[2, 2]
    q = (a00 + a11 + a22) / 3.0
    b00, b11, b22 = a00 - q, a11 - q, a22 - q
    p1 = a01 * a01 + a02 * a02 + a12 * a12
    p = np.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * p1) / 6.0)
    det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(p > 0, det / (2.0 * p**3), 0.0)
    phi = np.arccos(np.clip(r, -1.0, 1.0)) / 3.0
    e1 = q + 2.0 * p * np.cos(phi)
    e3 = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    return np.stack([e1, 3.0 * q - e1 - e3, e3], axis=-1)


def vessel_proposals(
    qsm: np.ndarray,
    lesion_labels: np.ndarray,
    voxel_size: Sequence[float],
    *,
    qsm_mask: np.ndarray | None = None,
    reach_vox: float = 10.0,
    threshold: float = VESSEL_THRESHOLD,
    scales_mm: Sequence[float] = VESSEL_SCALES_MM,
) -> np.ndarray:
    """Voxels proposed as vessel near the lesions (a proposal, never applied).

    The vesselness (:func:`vesselness`) is computed in each lesion's box grown by ``reach_vox``
    voxels in-plane (the reference ROIs' reach) and 3 smoothing widths more; voxels above
    ``threshold`` inside that box (and the QSM mask) are proposed.

    Returns
    -------
    (X, Y, Z) bool
    """
    img = np.asarray(qsm)
    labels = np.asarray(lesion_labels)
    vs = [float(v) for v in voxel_size]
    out = np.zeros(img.shape, dtype=bool)
    margin = [int(math.ceil(3 * max(scales_mm) / v)) for v in vs]
    reach = int(math.ceil(reach_vox))
    for box in ndimage.find_objects(labels):
        if box is None:
            continue
        grow = [reach + margin[0], reach + margin[1], margin[2]]
        outer = tuple(slice(max(b.start - g, 0), min(b.stop + g, n)) for b, g, n in zip(box, grow, img.shape))
        inner = tuple(
            slice(max(b.start - g, 0) - o.start, min(b.stop + g, n) - o.start)
            for b, g, n, o in zip(box, [reach, reach, 0], img.shape, outer)
        )
        region = img[outer]
        v = vesselness(region, vs, scales_mm=scales_mm)
        hit = v[inner] > threshold
        if qsm_mask is not None:
            hit &= np.asarray(qsm_mask[outer], dtype=bool)[inner]
        target = tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner))
        out[target] |= hit
    return out


def exclude_lesions(labels: np.ndarray, lesions: Collection[int]) -> np.ndarray:
    """A copy of a lesion label map without the given lesion ids (their voxels set to 0)."""
    arr = np.asarray(labels)
    ids = [int(k) for k in lesions]
    out = arr.copy()
    if ids:
        out[np.isin(arr, ids)] = 0
    return out


def exclude_rois(reference_labels: np.ndarray, lesions: Collection[int]) -> np.ndarray:
    """A copy of a reference label map without the ROIs of the given lesion ids."""
    arr = np.asarray(reference_labels)
    out = arr.copy()
    ids = [int(k) for k in lesions]
    if ids:
        out[np.isin(arr // 10, ids) & (arr > 0)] = 0
    return out


def remove_voxels(labels: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """A copy of a label map (lesions or reference ROIs) with ``voxels`` (bool, same shape) set to 0.

    Raises
    ------
    LesionInputError
        ``voxels`` has another shape.
    """
    arr = np.asarray(labels)
    sel = np.asarray(voxels, dtype=bool)
    if sel.shape != arr.shape:
        raise LesionInputError(f"voxels to remove have shape {sel.shape}, the label map {arr.shape}")
    out = arr.copy()
    out[sel] = 0
    return out


#: FSL FAST tissue code of each reference ROI code (``roi % 10``): 1 WM (FAST 3), 2 cortical (GM, FAST 2).
ROI_CODE_TISSUE = {1: 3, 2: 2}
_ROI_CODE_NAME = {1: "white matter (FAST 3)", 2: "grey matter (FAST 2)"}


def add_reference_voxels(
    reference_labels: np.ndarray,
    voxels: np.ndarray,
    *,
    roi: int,
    lesion_labels: np.ndarray,
    tissue: np.ndarray,
    gap_vox: float,
) -> np.ndarray:
    """A copy of a reference label map with ``voxels`` added to the ROI ``roi``.

    A reviewer may grow a reference ROI only with voxels the ROI rules would allow
    (:mod:`qsmreview.lesions.reference`): of the ROI's own tissue (WM, FAST 3, for ``10 * lesion +
    1``; GM, FAST 2, for ``10 * lesion + 2``), farther than ``gap_vox`` voxels (3-D Euclidean
    distance, in voxels) from every consensus lesion, and in no other ROI. Voxels already in
    ``roi`` are ignored. Every voxel is checked; nothing is added when one fails.

    Parameters
    ----------
    reference_labels : (X, Y, Z) int array
        ROI ids (``10 * lesion + code``). Not modified.
    voxels : (X, Y, Z) bool
        The voxels to add.
    roi : int
        The ROI to grow (it need not have voxels yet).
    lesion_labels : (X, Y, Z) int array
        Consensus lesions 0 / 1..n (the current, edited map).
    tissue : (X, Y, Z) integer array
        FSL FAST codes 0..3.
    gap_vox : float
        ``ConsensusParams.reference_gap_vox``.

    Returns
    -------
    (X, Y, Z) array, the dtype of ``reference_labels``.

    Raises
    ------
    LesionInputError
        Shapes differ, ``roi`` is not an ROI id, or a voxel breaks a rule (the message says which
        rule and how many voxels, with the first of them as ``[i, j, k]``), or every voxel is
        already in the ROI.
    """
    refs = np.asarray(reference_labels)
    sel = np.asarray(voxels, dtype=bool)
    labels = np.asarray(lesion_labels)
    tis = np.asarray(tissue)
    for name, arr in (("voxels", sel), ("lesion labels", labels), ("tissue", tis)):
        if arr.shape != refs.shape:
            raise LesionInputError(f"{name} have shape {arr.shape}, the reference label map {refs.shape}")
    code = int(roi) % 10
    if int(roi) < 11 or code not in ROI_CODE_TISSUE:
        raise LesionInputError(f"{roi} is not a reference ROI id (10 x lesion + 1 for WM, + 2 for cortical)")
    new = sel & (refs != roi)
    if not new.any():
        raise LesionInputError(f"every voxel given is already in reference ROI {roi}: nothing to add")

    def refuse(bad: np.ndarray, why: str) -> None:
        if bad.any():
            first = [int(c) for c in np.argwhere(bad)[0]]
            n = int(np.count_nonzero(bad))
            raise LesionInputError(f"{n} voxel(s) {why} (first {first}); nothing was added to ROI {roi}")

    refuse(new & (tis != ROI_CODE_TISSUE[code]), f"are not {_ROI_CODE_NAME[code]}, the tissue of ROI {roi}")
    lesion_any = labels > 0
    if lesion_any.any():
        near = ndimage.distance_transform_edt(~lesion_any) <= float(gap_vox)
    else:
        near = np.zeros(refs.shape, dtype=bool)
    refuse(new & lesion_any, "are inside a consensus lesion")
    refuse(new & near, f"are within the {gap_vox:g}-voxel gap around a consensus lesion")
    refuse(new & (refs > 0), "belong to another reference ROI")
    out = refs.copy()
    out[new] = roi
    return out
