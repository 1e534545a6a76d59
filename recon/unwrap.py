"""Laplacian phase unwrapping in zero-padded FFT form."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from recon.errors import ReconInputError
from recon.mask import check_mask, check_volume, check_voxel_size


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2 * np.pi) - np.pi


def laplacian_kernel(shape: Sequence[int], voxel_size: Sequence[float]) -> np.ndarray:
    """Half-spectrum (``rfftn`` layout) of the 7-point discrete Laplacian, in 1/mm^2.

    ``L(k) = sum_a (2 cos(2 pi k_a / n_a) - 2) / h_a^2``: each axis keeps its own voxel size
    ``h_a``, so anisotropic voxels are handled exactly. ``L(0) = 0``.
    """
    out = np.zeros((shape[0], shape[1], shape[2] // 2 + 1), dtype=np.float32)
    for a, (n, h) in enumerate(zip(shape, voxel_size)):
        k = np.arange(n if a < 2 else n // 2 + 1)
        term = ((2 * np.cos(2 * np.pi * k / n) - 2) / h**2).astype(np.float32)
        out += term.reshape([-1 if i == a else 1 for i in range(3)])
    return out


def wrapped_laplacian(
    phase: np.ndarray, voxel_size: Sequence[float], mask: np.ndarray | None = None
) -> np.ndarray:
    """Discrete Laplacian (rad/mm^2) of the unwrapped phase, from the wrapped phase alone.

    Each neighbour difference is wrapped to [-pi, pi) before the divergence is taken, which is
    the true difference wherever the phase changes by less than pi per voxel. With ``mask`` only
    differences between two mask voxels count (zero flux through the mask boundary), so noise
    outside the mask does not enter.
    """
    lap = np.zeros(phase.shape, dtype=np.float32)
    for a, h in enumerate(voxel_size):
        d = _wrap(np.diff(phase, axis=a)).astype(np.float32)
        if mask is not None:
            d *= np.logical_and(
                np.take(mask, np.arange(mask.shape[a] - 1), axis=a),
                np.take(mask, np.arange(1, mask.shape[a]), axis=a),
            )
        d /= np.float32(h * h)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[a] = slice(0, -1)
        hi[a] = slice(1, None)
        lap[tuple(lo)] += d
        lap[tuple(hi)] -= d
    return lap


def laplacian_unwrap(
    phase: np.ndarray,
    voxel_size: Sequence[float],
    *,
    mask: np.ndarray | None = None,
    pad: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Unwrap a 3-D phase image by Laplacian (Poisson) integration.

    The Laplacian of the unwrapped phase is computed from the wrapped phase
    (:func:`wrapped_laplacian`), then inverted with FFTs on a zero-padded grid (fast lengths,
    real FFTs, float32). This is the Schofield-Zhu algorithm as used by the MEDI toolbox's
    ``unwrapLaplacian``, with one change: the Laplacian is built from wrapped neighbour
    differences (as in Ghiglia and Romero's least-squares unwrapping) rather than the identity
    ``cos(phi) lap(sin(phi)) - sin(phi) lap(cos(phi))``, which on a grid equals
    ``sum_n sin(phi_n - phi) / h^2`` and so underestimates the Laplacian by a factor
    ``cos(gradient per voxel)`` where the phase is steep.

    The result differs from the true phase by a harmonic function inside the mask (and a
    constant), which background field removal removes anyway. The constant is chosen so that the
    result is congruent (mod 2 pi) with the input on average over the mask.

    Parameters
    ----------
    phase : (nx, ny, nz) array
        Wrapped phase in radians.
    voxel_size : (3,) floats
        mm per axis (the Laplacian uses each axis' own size).
    mask : (nx, ny, nz) bool, optional
        Region whose phase is wanted; differences leaving it are ignored and the output is zero
        outside it. Default: the whole grid.
    pad : int or (3,) ints, optional
        Zero padding per side (voxels) before the FFT. Default: half of each axis, rounded up to
        a fast FFT length.

    Returns
    -------
    unwrapped : (nx, ny, nz) float32
        Radians.

    References
    ----------
    Schofield MA, Zhu Y. Fast phase unwrapping algorithm for interferometric applications. Opt
    Lett 2003;28:1194-1196.

    Li W, Wu B, Liu C. Quantitative susceptibility mapping of human brain reflects spatial
    variation in tissue composition. NeuroImage 2011;55:1645-1656.

    Ghiglia DC, Romero LA. Robust two-dimensional weighted and unweighted phase unwrapping that
    uses fast transforms and iterative methods. J Opt Soc Am A 1994;11:107-117.
    """
    vs = check_voxel_size(voxel_size)
    ph = check_volume(phase, "phase", unit="in radians")
    ph = ph.astype(np.float32)
    m = None if mask is None else check_mask(mask, ph.shape)
    lap = wrapped_laplacian(ph, vs, m)
    if pad is None:
        padded = [int(scipy.fft.next_fast_len(n + 2 * ((n + 1) // 2), real=True)) for n in ph.shape]
    else:
        p = np.broadcast_to(np.asarray(pad, dtype=int), (3,))
        if np.any(p < 0):
            raise ReconInputError(f"pad must be >= 0, got {pad!r}")
        padded = [int(scipy.fft.next_fast_len(n + 2 * int(q), real=True)) for n, q in zip(ph.shape, p)]
    big = np.zeros(padded, dtype=np.float32)
    sl = tuple(slice(0, n) for n in ph.shape)
    big[sl] = lap
    kernel = laplacian_kernel(padded, vs)
    kernel[0, 0, 0] = 1.0
    spec = scipy.fft.rfftn(big, workers=-1)
    spec /= kernel
    spec[0, 0, 0] = 0.0
    out = scipy.fft.irfftn(spec, s=padded, workers=-1)[sl].astype(np.float32)
    region = np.ones(ph.shape, dtype=bool) if m is None else m
    shift = np.angle(np.mean(np.exp(1j * (ph[region] - out[region]).astype(np.float64))))
    out += np.float32(shift)
    if m is not None:
        out[~m] = 0.0
    return out
