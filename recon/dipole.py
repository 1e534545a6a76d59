"""The unit dipole kernel and the forward model field = D * chi.

The kernel is the continuous k-space form of Salomir et al. (Concepts Magn Reson B 2003;19:26) and
Marques & Bowtell (Concepts Magn Reson B 2005;25:65), as used by the MEDI toolbox:

    D(k) = 1/3 - (k . b)^2 / |k|^2,   D(0) = 0,

with b the unit B0 direction in voxel coordinates. It gives the Lorentz-corrected relative field
(dimensionless, ppm in = ppm out) of a susceptibility distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from recon.errors import ReconInputError


def _unit(b0_dir: Sequence[float]) -> np.ndarray:
    b = np.asarray(b0_dir, dtype=np.float64)
    if b.shape != (3,) or not np.all(np.isfinite(b)) or np.linalg.norm(b) == 0:
        raise ReconInputError(f"B0 direction must be a finite non-zero 3-vector, got {b0_dir!r}")
    return b / np.linalg.norm(b)


def dipole_kernel(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    *,
    rfft: bool = True,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Unit dipole kernel in k-space.

    Parameters
    ----------
    shape : (3,) ints
        Grid shape (nx, ny, nz) of the image the kernel will multiply (after any padding).
    voxel_size : (3,) floats
        Voxel size in mm along each array axis. Each axis keeps its own size.
    b0_dir : (3,) floats
        B0 direction in voxel (array-axis) coordinates; normalised here.
    rfft : bool
        If True return the half spectrum matching ``scipy.fft.rfftn`` (last axis ``nz//2 + 1``),
        else the full spectrum matching ``fftn``.
    dtype : numpy dtype
        Output dtype (float32 by default).

    Returns
    -------
    D : ndarray, real
        Kernel with ``D[0, 0, 0] == 0``.

    References
    ----------
    Salomir R, de Senneville BD, Moonen CTW. A fast calculation method for magnetic field
    inhomogeneity due to an arbitrary distribution of bulk susceptibility. Concepts Magn Reson B
    2003;19:26-34.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ReconInputError(f"shape must be three positive ints, got {shape!r}")
    vs = np.asarray(voxel_size, dtype=np.float64)
    if vs.shape != (3,) or np.any(~np.isfinite(vs)) or np.any(vs <= 0):
        raise ReconInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}")
    b = _unit(b0_dir)
    kx = scipy.fft.fftfreq(shape[0], d=vs[0])[:, None, None]
    ky = scipy.fft.fftfreq(shape[1], d=vs[1])[None, :, None]
    if rfft:
        kz = scipy.fft.rfftfreq(shape[2], d=vs[2])[None, None, :]
    else:
        kz = scipy.fft.fftfreq(shape[2], d=vs[2])[None, None, :]
    k2 = kx**2 + ky**2 + kz**2
    kb = kx * b[0] + ky * b[1] + kz * b[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 / 3.0 - kb**2 / k2
    d[0, 0, 0] = 0.0
    return d.astype(dtype, copy=False)


def forward_field(
    chi: np.ndarray,
    voxel_size: Sequence[float],
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    *,
    pad: Sequence[int] | int = 0,
) -> np.ndarray:
    """Relative field (same unit as ``chi``, e.g. ppm) produced by a susceptibility map.

    Parameters
    ----------
    chi : (nx, ny, nz) array
        Susceptibility (ppm, or any unit: the field comes out in the same unit).
    voxel_size : (3,) floats
        Voxel size in mm.
    b0_dir : (3,) floats
        B0 direction in voxel coordinates.
    pad : int or (3,) ints
        Zero padding added on each side of each axis before the FFT (reduces wrap-around of the
        periodic convolution), removed afterwards.

    Returns
    -------
    field : (nx, ny, nz) float32 array
        ``ifft(D * fft(chi))`` on the input grid.
    """
    chi = np.asarray(chi)
    if chi.ndim != 3:
        raise ReconInputError(f"chi must be 3-D, got shape {chi.shape}")
    p = np.broadcast_to(np.asarray(pad, dtype=int), (3,))
    x = np.pad(chi.astype(np.float32, copy=False), [(int(q), int(q)) for q in p])
    d = dipole_kernel(x.shape, voxel_size, b0_dir)
    f = scipy.fft.irfftn(scipy.fft.rfftn(x, workers=-1) * d, s=x.shape, workers=-1)
    sl = tuple(slice(int(q), int(q) + n) for q, n in zip(p, chi.shape))
    return np.ascontiguousarray(f[sl], dtype=np.float32)
