"""Laplacian unwrapping recovers smooth phase spanning many multiples of 2 pi."""

from __future__ import annotations

import numpy as np

from recon.unwrap import laplacian_unwrap, wrapped_laplacian
from tests.recon.conftest import grid_mm


def wrap(x: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * x)).astype(np.float32)


def test_it_recovers_a_gaussian_phase_up_to_a_constant():
    shape, vs = (96, 80, 64), (0.8, 1.0, 1.6)
    g = grid_mm(shape, vs)
    # 30 rad peak (about 5 wraps), at most ~2.4 rad per voxel along z; ~0 at the grid edge.
    true = (30 * np.exp(-(g[0] ** 2 + (g[1] - 5) ** 2 + g[2] ** 2) / (2 * 12.0**2))).astype(np.float32)
    out = laplacian_unwrap(wrap(true), vs)
    d = out - true
    # Away from the grid edge, where the zero-flux boundary of the Poisson solve is not quite true.
    centre = (g[0] / 30) ** 2 + (g[1] / 30) ** 2 + (g[2] / 40) ** 2 < 1
    assert np.abs(d - d.mean())[centre].max() < 0.1  # of a 30 rad phase
    # The constant makes the result congruent with the input: it is the true phase itself.
    assert abs(d.mean()) < 0.05


def test_it_gets_the_laplacian_right_inside_a_mask():
    shape, vs = (64, 64, 40), (0.9, 1.1, 1.7)
    g = grid_mm(shape, vs)
    true = (0.015 * g[0] ** 2 - 0.01 * g[1] * g[2] + 0.02 * g[2] ** 2 + 0.5 * g[0]).astype(np.float32)
    mask = (g[0] / 24) ** 2 + (g[1] / 28) ** 2 + (g[2] / 28) ** 2 < 1
    out = laplacian_unwrap(wrap(true), vs, mask=mask)
    assert np.ptp(true[mask]) > 8 * np.pi
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1, 1:-1] = mask[1:-1, 1:-1, 1:-1]
    for a in range(3):
        inner &= np.roll(mask, 1, a) & np.roll(mask, -1, a)
    # Exact Laplacian of the quadratic: 2 * (0.015 + 0.02) rad/mm^2.
    lap = wrapped_laplacian(out, vs)
    np.testing.assert_allclose(lap[inner], 0.07, atol=2e-3)
    assert np.all(out[~mask] == 0)
