"""Convolution kernels shared by several methods (given as rfft half spectra)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sphere_kernel(shape: Sequence[int], voxel_size: Sequence[float], radius_mm: float) -> np.ndarray:
    """Half spectrum of the normalised spherical mean value (SMV) kernel of radius ``radius_mm``.

    The sphere is the set of voxel centres within ``radius_mm`` of the origin in mm (a 1e-9 mm^2
    tolerance keeps centres exactly on the sphere), so on an anisotropic grid it is an ellipsoid
    in voxels; it is centred at index 0 (periodic) and sums to 1. Used by V-SHARP and by MEDI's
    optional SMV preconditioning.

    Parameters
    ----------
    shape : (3,) ints
        Real-space grid shape.
    voxel_size : (3,) floats
        mm per axis.
    radius_mm : float
        Sphere radius in mm.

    Returns
    -------
    (nx, ny, nz // 2 + 1) float32
        Real part of ``rfftn`` of the sphere (the kernel is even, so the spectrum is real).
    """
    axes = [np.fft.fftfreq(n) * n * float(h) for n, h in zip(shape, voxel_size)]
    r2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    sphere = (r2 <= radius_mm**2 + 1e-9).astype(np.float32)
    sphere /= sphere.sum()
    return np.real(np.fft.rfftn(sphere)).astype(np.float32)
