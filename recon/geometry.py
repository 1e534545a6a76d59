"""Geometry from NIfTI affines: voxel sizes and the B0 direction in voxel coordinates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recon.errors import ReconInputError


def voxel_size_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis: the column norms of the affine's 3x3 part."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ReconInputError("affine must be a finite 4x4 matrix")
    vs = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(vs <= 0):
        raise ReconInputError(f"affine has a zero-length axis (voxel size {vs.tolist()})")
    return (float(vs[0]), float(vs[1]), float(vs[2]))


def b0_direction_from_affine(
    affine: np.ndarray, b0_world: Sequence[float] = (0.0, 0.0, 1.0)
) -> tuple[float, float, float]:
    """Unit B0 direction in voxel (array-axis) coordinates.

    The scanner's B0 is along world (RAS / scanner) z. With ``affine = R @ diag(voxel_size)`` the
    direction in voxel axes is ``R^T b0_world`` (R is a rotation, possibly with a flip). Oblique
    slices therefore give an oblique B0 direction.

    Parameters
    ----------
    affine : (4, 4) array
        NIfTI voxel-to-world affine (mm).
    b0_world : (3,) floats
        B0 in world coordinates, scanner z by default.

    Returns
    -------
    (bx, by, bz) : unit vector in voxel coordinates.
    """
    a = np.asarray(affine, dtype=np.float64)
    vs = np.asarray(voxel_size_from_affine(a))
    r = a[:3, :3] / vs[None, :]
    b = np.asarray(b0_world, dtype=np.float64)
    if b.shape != (3,) or np.linalg.norm(b) == 0:
        raise ReconInputError(f"B0 world direction must be a non-zero 3-vector, got {b0_world!r}")
    # Least squares handles a slightly non-orthonormal R (shear from rounding) gracefully.
    d = np.linalg.lstsq(r, b / np.linalg.norm(b), rcond=None)[0]
    d = d / np.linalg.norm(d)
    return (float(d[0]), float(d[1]), float(d[2]))
