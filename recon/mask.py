"""Brain masks from the magnitude image, erosion in mm, and a CSF mask for MEDI+0."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi

from recon.errors import ReconInputError


def check_voxel_size(voxel_size: Sequence[float]) -> tuple[float, float, float]:
    """Voxel size as three positive finite floats (mm), or :class:`ReconInputError`."""
    try:
        vs = np.asarray(voxel_size, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ReconInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}") from exc
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise ReconInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}")
    return (float(vs[0]), float(vs[1]), float(vs[2]))


def check_mask(mask: np.ndarray, shape: tuple[int, ...], *, name: str = "mask") -> np.ndarray:
    """``mask`` as a non-empty bool array of ``shape``, or :class:`ReconInputError`."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ReconInputError(f"{name} has shape {m.shape}, expected {tuple(shape)}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.all(np.isfinite(m)):
            raise ReconInputError(f"{name} must be finite numbers or booleans")
        m = m > 0.5 if np.issubdtype(m.dtype, np.floating) else m != 0
    if not m.any():
        raise ReconInputError(f"{name} is empty (no voxel set)")
    return m


def check_volume(volume: np.ndarray, name: str, *, purpose: str = "", unit: str = "(no NaN or inf)") -> np.ndarray:
    """``volume`` as a 3-D array of finite real numbers, or :class:`ReconInputError`.

    ``purpose`` and ``unit`` only shape the messages ("magnitude must be 3-D for a brain mask").
    """
    v = np.asarray(volume)
    if v.ndim != 3:
        raise ReconInputError(f"{name} must be 3-D{purpose}, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v) or not np.all(np.isfinite(v)):
        raise ReconInputError(f"{name} must be finite real numbers {unit}")
    return v


def ball(radius_mm: float, voxel_size: Sequence[float]) -> np.ndarray:
    """Boolean ellipsoidal footprint of a sphere of ``radius_mm`` on an anisotropic grid."""
    half = [int(np.floor(radius_mm / v)) for v in voxel_size]
    g = np.meshgrid(*[np.arange(-h, h + 1) * v for h, v in zip(half, voxel_size)], indexing="ij")
    return (g[0] ** 2 + g[1] ** 2 + g[2] ** 2) <= radius_mm**2 + 1e-9


def otsu_threshold(values: np.ndarray, *, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximises the between-class variance).

    References
    ----------
    Otsu N. A threshold selection method from gray-level histograms. IEEE Trans Syst Man Cybern
    1979;9:62-66.
    """
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mu1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``mask`` (empty stays empty)."""
    labels, n = ndi.label(mask)
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Holes filled in every axial (axis-2) slice, as ``binary_fill_holes`` slice by slice.

    A hole open at the top or bottom slab edge is still a hole. One 3-D labelling with an
    in-plane 4-connected structure does all slices at once: background components that touch
    the in-plane border are outside, all others are holes. This also fills every 3-D hole (a
    3-D hole cannot reach the in-plane border within its slices).
    """
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[:, :, 1] = ndi.generate_binary_structure(2, 1)
    labels, n = ndi.label(~mask, structure=structure)
    if n == 0:
        return mask.copy()
    border = np.unique(
        np.concatenate([labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(), labels[:, -1].ravel()])
    )
    outside = np.zeros(n + 1, dtype=bool)
    outside[border] = True
    outside[0] = True  # label 0 is the mask itself
    return mask | ~outside[labels]


def brain_mask(
    magnitude: np.ndarray,
    voxel_size: Sequence[float],
    *,
    threshold: float | None = None,
    smoothing_mm: float = 1.0,
    opening_mm: float = 2.0,
) -> np.ndarray:
    """Head-interior (brain + CSF) mask from a gradient-echo magnitude image.

    Steps: Gaussian smoothing (``smoothing_mm`` standard deviation, per-axis in voxels);
    threshold (Otsu's, on the finite voxels, unless given); morphological opening with a ball of
    ``opening_mm`` (breaks the thin bridges between brain and scalp across the dark skull); the
    largest connected component; holes filled (dark veins, nuclei with short T2*).

    Parameters
    ----------
    magnitude : (nx, ny, nz) array
        Magnitude image (any scale), e.g. the first echo.
    voxel_size : (3,) floats
        mm per axis.
    threshold : float, optional
        Intensity threshold in the magnitude's unit (default: Otsu's on the smoothed image).
    smoothing_mm : float
        Standard deviation of the Gaussian pre-smoothing in mm (0: none).
    opening_mm : float
        Radius of the opening ball in mm (0: none).

    Returns
    -------
    mask : (nx, ny, nz) bool

    Raises
    ------
    ReconInputError
        If the magnitude is not 3-D, contains NaN/inf, is constant, or the mask comes out empty.
    """
    vs = check_voxel_size(voxel_size)
    mag = check_volume(magnitude, "magnitude", purpose=" for a brain mask")
    m = mag.astype(np.float32)
    if smoothing_mm > 0:
        m = ndi.gaussian_filter(m, sigma=[smoothing_mm / v for v in vs])
    if float(m.max()) <= float(m.min()):
        raise ReconInputError("magnitude is constant: no brain to find")
    t = otsu_threshold(m.ravel()) if threshold is None else float(threshold)
    mask = m > t
    if opening_mm > 0:
        mask = ndi.binary_opening(mask, structure=ball(opening_mm, vs))
    mask = largest_component(mask)
    mask = _fill_holes_per_slice(mask)
    if not mask.any():
        raise ReconInputError("brain mask is empty: magnitude threshold removed everything")
    return mask


def erode_mask(mask: np.ndarray, voxel_size: Sequence[float], distance_mm: float = 2.5) -> np.ndarray:
    """Erode a mask by a distance in mm, respecting anisotropic voxels.

    The rule: a voxel is kept iff the Euclidean distance from its centre to the centre of the
    nearest voxel *outside* the mask, ``scipy.ndimage.distance_transform_edt(mask,
    sampling=voxel_size)``, is strictly greater than ``distance_mm``. Voxels beyond the array
    edge count as outside. So ``distance_mm=0`` returns the mask unchanged and a voxel on the
    boundary (its outside neighbour one voxel ``h`` away) survives only if ``h > distance_mm``.

    Parameters
    ----------
    mask : (nx, ny, nz) bool
    voxel_size : (3,) floats
        mm per axis.
    distance_mm : float
        Erosion distance in mm (>= 0).

    Returns
    -------
    eroded : (nx, ny, nz) bool (may be empty)
    """
    vs = check_voxel_size(voxel_size)
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ReconInputError(f"mask must be 3-D, got shape {m.shape}")
    if not (np.isfinite(distance_mm) and distance_mm >= 0):
        raise ReconInputError(f"erosion distance must be >= 0 mm, got {distance_mm!r}")
    m = m.astype(bool)
    if distance_mm == 0:
        return m.copy()
    out = np.zeros_like(m)
    if not m.any():
        return out
    # The distance transform runs on the mask's bounding box plus one outside voxel per side:
    # every voxel past that layer is farther from the mask than the layer itself, so the
    # distances inside the box are exact (and the box is much smaller than a head slab).
    spans = [np.nonzero(np.any(m, axis=ax))[0] for ax in ((1, 2), (0, 2), (0, 1))]
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in spans)
    d = ndi.distance_transform_edt(np.pad(m[box], 1), sampling=vs)[1:-1, 1:-1, 1:-1]
    out[box] = d > distance_mm
    return out


def csf_mask(
    magnitude: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    te: Sequence[float] | None = None,
    r2star_max: float = 15.0,
    min_depth_mm: float = 10.0,
) -> np.ndarray:
    """Ventricular CSF for the MEDI+0 zero reference.

    With several echoes, CSF is where the mono-exponential R2* (log-linear fit of the magnitude)
    is below ``r2star_max`` (1/s); with one echo, where the magnitude exceeds its 90th percentile
    inside the mask (CSF is the brightest tissue in T2*-weighted images). Only voxels at least
    ``min_depth_mm`` inside the mask are kept (ventricles, not the outer CSF rim), then the
    connected components holding at least 10 % of the largest one. As in MEDI+0's
    ``extract_CSF`` (Liu Z et al., Magn Reson Med 2018;79:2795-2803), simplified.

    Parameters
    ----------
    magnitude : (nx, ny, nz) or (nx, ny, nz, n_echo)
    mask : (nx, ny, nz) bool
    voxel_size : (3,) floats
        mm.
    te : sequence of float, optional
        Echo times in s (required with several echoes).
    r2star_max : float
        R2* threshold in 1/s.
    min_depth_mm : float
        Minimum distance from the mask boundary in mm.

    Returns
    -------
    csf : (nx, ny, nz) bool

    Raises
    ------
    ReconInputError
        If no CSF is found.
    """
    vs = check_voxel_size(voxel_size)
    mag = np.asarray(magnitude, dtype=np.float64)
    m = check_mask(mask, mag.shape[:3])
    deep = erode_mask(m, vs, min_depth_mm)
    if mag.ndim == 4 and mag.shape[3] > 1:
        if te is None or len(te) != mag.shape[3]:
            raise ReconInputError("csf_mask needs one echo time per magnitude echo")
        t = np.asarray(te, dtype=np.float64)
        logm = np.log(np.maximum(mag, 1e-12))
        tc = t - t.mean()
        r2s = -np.tensordot(logm, tc, axes=([3], [0])) / float(tc @ tc)
        csf = deep & (r2s < r2star_max)
    else:
        m3 = mag[..., 0] if mag.ndim == 4 else mag
        csf = deep & (m3 > np.percentile(m3[m], 90))
    labels, n = ndi.label(csf)
    if n == 0:
        raise ReconInputError(
            "no ventricular CSF found for the MEDI+0 zero reference; switch csf_zero_reference off"
        )
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = np.nonzero(sizes >= 0.1 * sizes.max())[0]
    return np.isin(labels, keep)
