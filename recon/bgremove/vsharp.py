"""Variable-kernel sophisticated harmonic artifact reduction (V-SHARP)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from recon.bgremove.pdf import _check_field
from recon.errors import ReconInputError
from recon.fft import RealFFT, solve_box
from recon.kernels import sphere_kernel
from recon.mask import check_mask, check_voxel_size


def vsharp(
    field: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    radii_mm: Sequence[float] | None = None,
    threshold: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local field by V-SHARP; returns the local field and the eroded mask it is valid in.

    A background field is harmonic inside the mask, so it equals its spherical mean: ``(delta -
    S_r) * f_background = 0`` wherever the sphere of radius r fits in the mask. For each radius
    (largest first) the high-passed field ``(delta - S_r) * f`` is kept where the sphere fits and
    no larger one did, so the interior uses the largest sphere and the boundary the smallest;
    the result is deconvolved by ``delta - S_rmax`` with truncation: spectral values with
    ``|1 - S_rmax(k)| < threshold`` are set to zero. The mask is eroded by the smallest sphere.
    B0 does not enter (the method only uses harmonicity).

    Parameters
    ----------
    field : (nx, ny, nz) array
        Total field (any unit); used inside the mask.
    mask : (nx, ny, nz) bool
    voxel_size : (3,) floats
        mm per axis; the spheres are spheres in mm (ellipsoids in voxels).
    radii_mm : sequence of float, optional
        Sphere radii in mm. Default: from 10 mm down to twice the largest voxel size, 1 mm
        apart (at least 1 voxel on every axis).
    threshold : float
        Truncation of the deconvolution (0.05 in Wu et al.).
    progress : callable(fraction, stage), optional

    Returns
    -------
    local : (nx, ny, nz) float32
        Local field, same unit as ``field``, zero outside ``eroded``.
    eroded : (nx, ny, nz) bool
        The mask eroded by the smallest sphere.

    Raises
    ------
    ReconInputError
        On bad inputs or when the smallest sphere erodes the whole mask.

    References
    ----------
    Schweser F, Deistung A, Lehr BW, Reichenbach JR. Quantitative imaging of intrinsic magnetic
    tissue properties using MRI signal phase: an approach to in vivo brain iron metabolism?
    NeuroImage 2011;54:2789-2807.

    Wu B, Li W, Guidon A, Liu C. Whole brain susceptibility mapping using compressed sensing.
    Magn Reson Med 2012;67:137-147.

    Li W, Avram AV, Wu B, Xiao X, Liu C. Integrated Laplacian-based phase unwrapping and
    background phase removal for quantitative susceptibility mapping. NMR Biomed
    2014;27:219-227.
    """
    vs = check_voxel_size(voxel_size)
    f_in = np.asarray(field)
    m_in = check_mask(mask, f_in.shape)
    f_in = _check_field(f_in, m_in)
    if radii_mm is None:
        r_min = 2.0 * max(vs)
        radii = list(np.arange(10.0, r_min - 1e-6, -1.0)) or [r_min]
        if radii[-1] > r_min:
            radii.append(r_min)
    else:
        radii = sorted((float(r) for r in radii_mm), reverse=True)
    if not radii or any(not (np.isfinite(r) and r >= max(vs)) for r in radii):
        raise ReconInputError(f"V-SHARP radii must be at least one voxel ({max(vs)} mm), got {radii_mm!r}")
    if not (0 < threshold < 1):
        raise ReconInputError(f"threshold must be in (0, 1), got {threshold!r}")
    box = solve_box(m_in, vs, margin_mm=max(radii) + 2 * max(vs))
    fft = RealFFT(box.shape)
    inside = box.crop(m_in, dtype=bool)
    f = box.crop(f_in)
    f[~inside] = 0.0
    fk = fft.forward(f)
    mk = fft.forward(inside.astype(np.float32))
    combined = np.zeros(box.shape, dtype=np.float32)
    filled = np.zeros(box.shape, dtype=bool)
    s_large = None
    for i, r in enumerate(radii):
        s = sphere_kernel(box.shape, vs, r)
        if s_large is None:
            s_large = s
        fits = fft.inverse(mk * s) > 0.999
        fits &= inside
        hp = f - fft.inverse(fk * s)
        new = fits & ~filled
        combined[new] = hp[new]
        filled |= fits
        if progress is not None:
            progress(0.9 * (i + 1) / len(radii), "V-SHARP background removal")
    if not filled.any():
        raise ReconInputError(f"V-SHARP: the smallest sphere ({radii[-1]} mm) erodes the whole mask")
    assert s_large is not None
    c = 1.0 - s_large
    inv = np.where(np.abs(c) >= threshold, 1.0 / np.where(np.abs(c) >= threshold, c, 1.0), 0.0).astype(np.float32)
    local = fft.inverse(fft.forward(combined) * inv)
    local[~filled] = 0.0
    if progress is not None:
        progress(1.0, "V-SHARP done")
    return box.paste(local.astype(np.float32)), box.paste(filled)
