"""Forward-difference gradient and divergence: adjointness and the slope of a ramp."""

import numpy as np
import pytest

from recon.inversion.gradient import divergence, gradient

VOXEL = (0.47, 0.8, 1.6)


@pytest.mark.parametrize("periodic", [False, True])
def test_it_is_the_negative_adjoint_of_the_divergence(periodic: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((17, 12, 9))
    y = rng.standard_normal((3, 17, 12, 9))
    lhs = np.sum(gradient(x, VOXEL, periodic=periodic).astype(np.float64) * y)
    rhs = -np.sum(x * divergence(y.astype(np.float32), VOXEL, periodic=periodic).astype(np.float64))
    assert lhs == pytest.approx(rhs, rel=1e-5)


def test_it_gives_the_slope_of_a_ramp_per_axis_over_that_axis_voxel_size() -> None:
    shape = (10, 8, 6)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    # Ramp in physical units: 0.3 u/mm along x, -0.2 along y, 0.05 along z.
    x = 0.3 * i * VOXEL[0] - 0.2 * j * VOXEL[1] + 0.05 * k * VOXEL[2]
    g = gradient(x, VOXEL)
    for a, slope in enumerate((0.3, -0.2, 0.05)):
        interior = [slice(None)] * 3
        interior[a] = slice(0, -1)
        np.testing.assert_allclose(g[a][tuple(interior)], slope, rtol=1e-4)
        last = [slice(None)] * 3
        last[a] = slice(-1, None)
        assert np.all(g[a][tuple(last)] == 0.0)  # Neumann: no difference past the last plane


def test_it_keeps_axes_apart_for_anisotropic_voxels() -> None:
    x = np.zeros((6, 6, 6), np.float32)
    x[3:, :, :] = 1.0  # a unit step along axis 0 only
    g = gradient(x, VOXEL)
    assert g[0, 2, 0, 0] == pytest.approx(1.0 / VOXEL[0])
    assert np.all(g[1] == 0) and np.all(g[2] == 0)


def test_divergence_of_a_constant_periodic_field_is_zero() -> None:
    y = np.ones((3, 5, 4, 3), np.float32)
    assert np.allclose(divergence(y, VOXEL, periodic=True), 0.0)
