"""The fused, threaded elementwise steps of the ADMM solver against the plain operators."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recon.inversion import admm
from recon.inversion.gradient import divergence, gradient

VOXEL = (0.5, 0.7, 1.3)


@pytest.mark.parametrize("shape", [(17, 9, 6), (3, 5, 4)])
@pytest.mark.parametrize("alpha", [1.0, 1.7])
@pytest.mark.parametrize("block_bytes", [1 << 20, 64])  # one block per worker / one plane each
def test_its_z_step_is_the_soft_threshold_of_the_relaxed_gradient(
    shape: tuple[int, int, int], alpha: float, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admm, "_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal((3, *shape)).astype(np.float32)
    penalty = (rng.random((3, *shape)) > 0.3).astype(np.float32)
    s = np.clip(rng.standard_normal((3, *shape)), -0.3, 0.3).astype(np.float32) * penalty
    thr = np.float32(0.3)
    # u = alpha grad x + (1 - alpha) z_old + s, z_old = g + s; s' = penalty clip(u); g' = u - 2 s'
    u = alpha * gradient(x, VOXEL, periodic=True) + (1 - alpha) * (g + s) + s
    s_expected = np.clip(u, -thr, thr) * penalty
    g_expected = u - 2 * s_expected
    runs = admm._blocks(shape[0], 12 * shape[1] * shape[2], 2)
    with ThreadPoolExecutor(2) as pool:
        admm._z_update(pool, runs, x, g, s, penalty, VOXEL, np.float32(alpha), thr)
        out = np.empty(shape, np.float32)
        admm._scaled_divergence(pool, runs, g_expected, out, VOXEL, -30.0)
    np.testing.assert_allclose(s, s_expected, atol=1e-5)
    np.testing.assert_allclose(g, g_expected, atol=1e-5)
    np.testing.assert_allclose(out, -30.0 * divergence(g_expected, VOXEL, periodic=True), rtol=1e-5, atol=1e-3)


def test_its_y_step_solves_the_per_voxel_problem() -> None:
    # argmin a (1 - cos(y - f)) + mu/2 (y - v)^2: stationary where a sin(y - f) + mu (y - v) = 0.
    rng = np.random.default_rng(5)
    n = 100_000  # several internal blocks
    f = rng.uniform(-1, 1, n).astype(np.float32)
    v = (f + rng.uniform(-0.3, 0.3, n)).astype(np.float32)
    a = rng.uniform(0, 200, n).astype(np.float32)
    y = f.copy()
    admm._newton_y(y, v, f, a, 100.0, 6)
    residual = a * np.sin(y - f) + 100.0 * (y - v)
    assert np.max(np.abs(residual)) < 1e-2


def test_its_kspace_step_is_the_closed_form_x_update_then_the_dipole() -> None:
    rng = np.random.default_rng(11)
    shape = (9, 6, 4)
    xk = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    vk = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    den, dk, kernel = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    x_expected = den * xk + dk * vk
    runs = admm._blocks(shape[0], 64, 2)
    with ThreadPoolExecutor(2) as pool:
        admm._kspace_step(pool, runs, xk, vk, den, dk, kernel)
    np.testing.assert_allclose(xk, x_expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vk, kernel * x_expected, rtol=1e-5, atol=1e-6)
