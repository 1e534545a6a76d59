"""The shared spherical mean value kernel."""

from __future__ import annotations

import numpy as np
import pytest

from recon.kernels import sphere_kernel


def test_it_averages_over_the_voxel_centres_inside_the_sphere() -> None:
    # Radius 2 mm on a 1 x 1 x 2 mm grid: offsets (i, j, k) with i^2 + j^2 + (2k)^2 <= 4:
    # k = 0 gives the 13 in-plane points with i^2 + j^2 <= 4, k = +-1 only (0, 0): 15 in all.
    k = sphere_kernel((16, 16, 8), (1.0, 1.0, 2.0), 2.0)
    assert k.shape == (16, 16, 5)
    assert k[0, 0, 0] == pytest.approx(1.0, abs=1e-6)  # normalised: sums to one
    x = np.zeros((16, 16, 8), np.float32)
    x[0, 0, 0] = 1.0
    smoothed = np.fft.irfftn(np.fft.rfftn(x) * k, s=x.shape, axes=(0, 1, 2))
    assert np.count_nonzero(np.abs(smoothed) > 1e-6) == 15
    np.testing.assert_allclose(smoothed[np.abs(smoothed) > 1e-6], 1.0 / 15, rtol=1e-5)
