"""Accuracy measures of a susceptibility map against a known truth, and lesion contrasts."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class LesionAgreement:
    """How well per-lesion relative susceptibilities match the truth (see :func:`lesion_agreement`).

    Attributes
    ----------
    n : int
        Lesions (or portions) measured in both maps.
    n_strong : int
        Of those, the ones whose true contrast is at least ``min_contrast`` in magnitude.
    sign_fraction : float
        Share of the strong ones whose estimated contrast has the true sign (nan if none).
    correlation : float
        Pearson correlation of estimated and true contrasts over all ``n`` (nan if n < 2).
    slope : float
        Least-squares slope of estimated against true contrast (1 = right scale; nan if n < 2).
    max_error : float
        Largest ``|estimate - truth|``, in the maps' unit.
    worst : int or tuple
        The lesion id (``(id, portion)`` with ``portions=True``) of ``max_error``.
    """

    n: int
    n_strong: int
    sign_fraction: float
    correlation: float
    slope: float
    max_error: float
    worst: int | tuple[int, str] | None

    def meets(self, *, sign_fraction: float = 0.9, correlation: float = 0.9) -> bool:
        """Whether both the sign and the correlation criteria hold (the issue's 90 % / 0.9)."""
        return bool(self.sign_fraction >= sign_fraction and self.correlation >= correlation)


def lesion_agreement(
    estimate: np.ndarray,
    truth: np.ndarray,
    lesions: np.ndarray,
    tissue: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    min_contrast: float = 0.01,
    portions: bool = False,
) -> LesionAgreement:
    """Compare the lesions' relative susceptibility in an estimated map with a true map.

    Both maps are measured the same way (:func:`relative_susceptibility`: each lesion, or each
    tissue portion of a mixed lesion with ``portions=True``, minus its same-tissue reference ring),
    then the contrasts are compared lesion by lesion: the share with the right sign among those
    whose true contrast reaches ``min_contrast``, the correlation and slope over all of them, and
    the largest error.

    Parameters
    ----------
    estimate, truth : (nx, ny, nz) arrays
        Susceptibility maps in one unit (ppm).
    lesions, tissue, mask
        As in :func:`lesion_portions` (lesion ids, FSL FAST tissue codes, voxels that count).
    min_contrast : float
        Smallest true |contrast| counted in the sign test, in the maps' unit (0.01 ppm).
    portions : bool
        Compare the cortical and WM portions of mixed lesions separately.

    Returns
    -------
    LesionAgreement
    """
    t = relative_susceptibility(truth, lesions, tissue, mask=mask, portions=portions)
    e = relative_susceptibility(estimate, lesions, tissue, mask=mask, portions=portions)
    if portions:
        t_flat = {(lid, name): v for lid, p in t.items() for name, v in p.items()}  # type: ignore[union-attr]
        e_flat = {(lid, name): v for lid, p in e.items() for name, v in p.items()}  # type: ignore[union-attr]
    else:
        t_flat, e_flat = dict(t), dict(e)  # type: ignore[arg-type]
    keys = [k for k in t_flat if k in e_flat]
    tv = np.array([t_flat[k] for k in keys], dtype=np.float64)
    ev = np.array([e_flat[k] for k in keys], dtype=np.float64)
    strong = np.abs(tv) >= min_contrast
    sign = float(np.mean(np.sign(ev[strong]) == np.sign(tv[strong]))) if strong.any() else float("nan")
    if len(keys) >= 2 and tv.std() > 0 and ev.std() > 0:
        corr = float(np.corrcoef(tv, ev)[0, 1])
        slope = float(np.polyfit(tv, ev, 1)[0])
    else:
        corr = slope = float("nan")
    err = np.abs(ev - tv)
    i = int(np.argmax(err)) if len(keys) else -1
    return LesionAgreement(
        n=len(keys),
        n_strong=int(strong.sum()),
        sign_fraction=sign,
        correlation=corr,
        slope=slope,
        max_error=float(err[i]) if len(keys) else float("nan"),
        worst=keys[i] if len(keys) else None,
    )
