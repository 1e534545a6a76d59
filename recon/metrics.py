"""Accuracy measures of a susceptibility map against a known truth, and lesion contrasts."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from recon.errors import ReconInputError

#: FSL FAST codes of the tissues a lesion portion can be referenced to.
TISSUE_NAMES = {1: "csf", 2: "gm", 3: "wm"}


def _same_shape(**arrays: np.ndarray) -> tuple[int, ...]:
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    first = next(iter(shapes.values()))
    if any(s != first for s in shapes.values()):
        raise ReconInputError(f"arrays must share one shape, got {shapes}")
    if len(first) != 3:
        raise ReconInputError(f"arrays must be 3-D, got shape {first}")
    return first


def nrmse(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, demean: bool = False) -> float:
    """Normalised root-mean-square error ``||e - t|| / ||t||`` over the mask.

    Parameters
    ----------
    estimate, truth : (nx, ny, nz) arrays
        Same unit (e.g. ppm).
    mask : (nx, ny, nz) bool
        Voxels compared.
    demean : bool
        Subtract each image's mean over the mask first (QSM is defined up to a constant).

    Returns
    -------
    float
        0 for a perfect estimate; 1 for an all-zero estimate (with ``demean=False``).
    """
    _same_shape(estimate=estimate, truth=truth, mask=mask)
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ReconInputError("mask is empty")
    e = np.asarray(estimate, dtype=np.float64)[m]
    t = np.asarray(truth, dtype=np.float64)[m]
    if demean:
        e = e - e.mean()
        t = t - t.mean()
    norm = float(np.linalg.norm(t))
    if norm == 0:
        raise ReconInputError("truth is zero in the mask: NRMSE undefined")
    return float(np.linalg.norm(e - t) / norm)


def lesion_portions(
    chi: np.ndarray,
    lesions: np.ndarray,
    tissue: np.ndarray,
    *,
    gap_voxels: int = 1,
    max_distance_voxels: int = 10,
    mask: np.ndarray | None = None,
    tissues: tuple[int, ...] = (2, 3),
) -> dict[int, dict[str, tuple[float, int]]]:
    """Per lesion and tissue portion: (portion mean - reference ring mean, portion voxel count).

    A lesion's portion in tissue class ``c`` is its voxels labelled ``c`` in ``tissue``. Its
    reference is the ring of voxels of the same class ``c``, not in any lesion (and inside
    ``mask`` if given), whose Euclidean distance in voxels to the nearest voxel of the lesion
    is ``d`` with ``gap_voxels < d <= max_distance_voxels``: the ``gap_voxels`` nearest
    shells are skipped (partial volume, blooming) and the ring is at most
    ``max_distance_voxels`` away. Portions without a reference voxel are left out.

    Parameters
    ----------
    chi : (nx, ny, nz) array
        Susceptibility (ppm).
    lesions : (nx, ny, nz) int array
        0 outside lesions, lesion id otherwise.
    tissue : (nx, ny, nz) int array
        FSL FAST codes (1 CSF, 2 GM, 3 WM).
    gap_voxels, max_distance_voxels : int
        Ring limits in voxels (distances between voxel centres, in voxel units).
    mask : (nx, ny, nz) bool, optional
        Only voxels inside count (lesion and ring), e.g. the QSM's eroded mask.
    tissues : tuple of int
        Tissue codes whose portions are measured.

    Returns
    -------
    dict
        ``{lesion_id: {"gm"|"wm"|"csf": (contrast, n_voxels)}}``.
    """
    _same_shape(chi=chi, lesions=lesions, tissue=tissue)
    if mask is not None:
        _same_shape(chi=chi, mask=mask)
    if not (0 <= gap_voxels < max_distance_voxels):
        raise ReconInputError("need 0 <= gap_voxels < max_distance_voxels")
    c = np.asarray(chi, dtype=np.float64)
    lab = np.asarray(lesions)
    tis = np.asarray(tissue)
    inside = np.ones(c.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out: dict[int, dict[str, tuple[float, int]]] = {}
    ids = [int(i) for i in np.unique(lab) if i != 0]
    objects = ndi.find_objects(np.where(lab > 0, lab, 0).astype(np.int64))
    reach = int(np.ceil(max_distance_voxels)) + 1
    for lid in ids:
        sl = objects[lid - 1]
        if sl is None:
            continue
        box = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, n)) for s, n in zip(sl, c.shape))
        les = lab[box] == lid
        dist = ndi.distance_transform_edt(~les)
        ring_zone = (dist > gap_voxels) & (dist <= max_distance_voxels) & (lab[box] == 0) & inside[box]
        portions: dict[str, tuple[float, int]] = {}
        for code in tissues:
            part = les & (tis[box] == code) & inside[box]
            ring = ring_zone & (tis[box] == code)
            if part.any() and ring.any():
                portions[TISSUE_NAMES.get(code, str(code))] = (
                    float(c[box][part].mean() - c[box][ring].mean()),
                    int(part.sum()),
                )
        if portions:
            out[lid] = portions
    return out


def relative_susceptibility(
    chi: np.ndarray,
    lesions: np.ndarray,
    tissue: np.ndarray,
    *,
    gap_voxels: int = 1,
    max_distance_voxels: int = 10,
    mask: np.ndarray | None = None,
    portions: bool = False,
) -> dict[int, float] | dict[int, dict[str, float]]:
    """Lesion susceptibility relative to adjacent normal-appearing tissue of the same class.

    For each lesion and each tissue class it overlaps (GM, WM), the mean over that portion minus
    the mean over a ring of the same class around the lesion (see :func:`lesion_portions` for
    the exact ring). A lesion inside one tissue gets ``mean(lesion) - mean(ring)``; a mixed
    lesion gets the voxel-weighted mean of its portions' contrasts, or each portion separately
    with ``portions=True``.

    Parameters
    ----------
    chi, lesions, tissue, gap_voxels, max_distance_voxels, mask
        As in :func:`lesion_portions`.
    portions : bool
        Return ``{lesion_id: {"gm": contrast, "wm": contrast}}`` instead of one number.

    Returns
    -------
    dict
        ``{lesion_id: contrast}`` in the unit of ``chi``; lesions without any reference ring
        are absent.
    """
    parts = lesion_portions(
        chi, lesions, tissue, gap_voxels=gap_voxels, max_distance_voxels=max_distance_voxels, mask=mask
    )
    if portions:
        return {lid: {k: v[0] for k, v in p.items()} for lid, p in parts.items()}
    return {
        lid: float(sum(v * n for v, n in p.values()) / sum(n for _, n in p.values())) for lid, p in parts.items()
    }
