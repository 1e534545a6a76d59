"""Projection onto dipole fields (PDF) background field removal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from recon.dipole import dipole_kernel
from recon.errors import ReconInputError
from recon.fft import RealFFT, solve_box
from recon.mask import check_mask, check_voxel_size


def _check_field(field: np.ndarray, mask: np.ndarray) -> np.ndarray:
    f = np.asarray(field)
    if f.ndim != 3:
        raise ReconInputError(f"field must be 3-D, got shape {f.shape}")
    if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
        raise ReconInputError(f"field must be real numbers, got dtype {f.dtype}")
    if not np.all(np.isfinite(f[mask])):
        raise ReconInputError("field contains NaN or infinite values inside the mask")
    return f


def pdf(
    field: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    noise: np.ndarray | None = None,
    margin_mm: float = 15.0,
    tol: float = 1e-2,
    max_iter: int = 200,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """Local field by projection onto dipole fields (PDF).

    The background field is modelled as the field of a susceptibility distribution ``x`` living
    outside the mask M. ``x`` minimises ``|| W M (f - D * x) ||_2^2`` (D the unit dipole
    convolution, W = 1 / noise normalised to mean 1 in M); the normal equations
    ``(1-M) D W^2 M D (1-M) x = (1-M) D W^2 M f`` are solved by conjugate gradients. The local
    field is ``f - D * x`` inside M, zero outside.

    For speed everything runs on the mask's bounding box grown by ``margin_mm`` (fast FFT
    lengths, float32, real FFTs); the sources may sit anywhere in that box outside M. Sources
    further away produce fields inside M that equivalent sources in the margin represent.

    Parameters
    ----------
    field : (nx, ny, nz) array
        Total field (any unit: Hz, rad/s, rad or ppm); used inside ``mask`` only.
    mask : (nx, ny, nz) bool
        Brain mask (region of the local field).
    voxel_size : (3,) floats
        mm per axis.
    b0_dir : (3,) floats
        B0 direction in voxel coordinates.
    noise : (nx, ny, nz) array, optional
        Field noise standard deviation (> 0 in the mask); the weight is its inverse.
        Default: uniform weight.
    margin_mm : float
        Margin around the mask's bounding box holding the background sources, mm.
    tol : float
        CG stops when the residual norm falls below ``tol`` times its initial value.
    max_iter : int
        CG iteration cap.
    progress : callable(fraction, stage), optional

    Returns
    -------
    local : (nx, ny, nz) float32
        Local field, same unit as ``field``, zero outside the mask.

    References
    ----------
    Liu T, Khalidov I, de Rochefort L, Spincemaille P, Liu J, Tsiouris AJ, Wang Y. A novel
    background field removal method for MRI using projection onto dipole fields (PDF). NMR Biomed
    2011;24:1129-1136.
    """
    vs = check_voxel_size(voxel_size)
    f_in = np.asarray(field)
    m_in = check_mask(mask, f_in.shape)
    f_in = _check_field(f_in, m_in)
    if not (np.isfinite(margin_mm) and margin_mm >= 0):
        raise ReconInputError(f"margin_mm must be >= 0, got {margin_mm!r}")
    if not (tol > 0 and max_iter >= 1):
        raise ReconInputError("tol must be > 0 and max_iter >= 1")
    box = solve_box(m_in, vs, margin_mm=margin_mm)
    fft = RealFFT(box.shape)
    inside = box.crop(m_in, dtype=bool)
    outside = ~inside
    f = box.crop(f_in)
    f[outside] = 0.0
    if noise is None:
        w2 = inside.astype(np.float32)
    else:
        n_in = np.asarray(noise)
        if n_in.shape != f_in.shape:
            raise ReconInputError(f"noise has shape {n_in.shape}, expected {f_in.shape}")
        if not np.all(np.isfinite(n_in[m_in])) or np.any(n_in[m_in] <= 0):
            raise ReconInputError("noise must be finite and positive inside the mask")
        n_box = box.crop(n_in)
        w = np.zeros(box.shape, dtype=np.float32)
        w[inside] = 1.0 / n_box[inside]
        w /= np.float32(w[inside].mean())
        w2 = w * w
    kernel = dipole_kernel(box.shape, vs, b0_dir)

    def normal(x: np.ndarray) -> np.ndarray:
        y = fft.convolve(x, kernel)
        y *= w2
        y = fft.convolve(y, kernel)
        y[inside] = 0.0
        return y

    b = fft.convolve(w2 * f, kernel)
    b[inside] = 0.0
    x = np.zeros(box.shape, dtype=np.float32)
    r = b.copy()
    p = r.copy()
    rr = float(np.vdot(r, r))
    rr0 = rr
    if rr0 > 0:
        for it in range(int(max_iter)):
            ap = normal(p)
            alpha = rr / float(np.vdot(p, ap))
            x += np.float32(alpha) * p
            r -= np.float32(alpha) * ap
            rr_new = float(np.vdot(r, r))
            if progress is not None:
                # Fraction from the log of the residual reduction, capped by the iteration count.
                frac = max(np.log(rr0 / max(rr_new, 1e-300)) / (2 * np.log(1 / tol)), (it + 1) / max_iter)
                progress(min(frac, 0.99), "PDF background removal")
            if rr_new <= (tol**2) * rr0:
                break
            p *= np.float32(rr_new / rr)
            p += r
            rr = rr_new
    background = fft.convolve(x, kernel)
    local = f - background
    local[outside] = 0.0
    if progress is not None:
        progress(1.0, "PDF done")
    return box.paste(local.astype(np.float32))
