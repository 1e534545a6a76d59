"""Fixtures for the recon tests: one small anisotropic phantom shared by the module tests."""

from __future__ import annotations

import numpy as np
import pytest

from recon.phantom import Phantom, make_phantom

#: Small grid with a different voxel size on every axis (whole head in the field of view).
SMALL_SHAPE = (96, 96, 48)
SMALL_VOXEL = (1.2, 1.3, 2.0)


@pytest.fixture(scope="session")
def small_phantom() -> Phantom:
    return make_phantom(SMALL_SHAPE, SMALL_VOXEL, te=(0.0177,), snr=50.0, seed=0)


def grid_mm(shape: tuple[int, int, int], voxel_size: tuple[float, float, float]) -> list[np.ndarray]:
    """Voxel-centre coordinates in mm, origin at the grid centre, broadcastable (x, y, z)."""
    return np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * v for n, v in zip(shape, voxel_size)], indexing="ij", sparse=True)
