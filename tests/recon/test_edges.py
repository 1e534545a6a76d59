"""MEDI edge mask: the share of edge components and the mask boundary."""

import numpy as np
import pytest

from recon.errors import ReconInputError
from recon.inversion.edges import DEFAULT_EDGE_SHARE, boundary_components, edge_mask

VOXEL = (0.9, 0.9, 1.6)


def _ellipsoid_with_texture(shape=(48, 44, 28), seed=0):
    rng = np.random.default_rng(seed)
    g = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(gi**2 for gi in g))
    mask = r < 0.85
    # Smooth anatomy (blocks of different brightness) plus mild noise.
    mag = 1.0 + 0.5 * (r < 0.5) + 0.3 * (g[0] > 0.2) + 0.05 * rng.standard_normal(shape)
    return mag.astype(np.float32), mask


def test_it_marks_the_documented_share_of_components_as_edges() -> None:
    mag, mask = _ellipsoid_with_texture()
    edges = edge_mask(mag, mask, VOXEL)
    n = mask.sum()
    # Counted as the toolbox does: edge components over 3 N_mask components.
    share = edges.sum() / (3 * n)
    assert share == pytest.approx(DEFAULT_EDGE_SHARE, abs=0.01)
    assert DEFAULT_EDGE_SHARE == pytest.approx(0.3)


def test_it_always_treats_the_mask_boundary_as_an_edge() -> None:
    mag, mask = _ellipsoid_with_texture()
    mag[~mask] = 5.0  # bright outside: a dark/bright rim must not hide the boundary
    mag[mask] = 5.0 + 0.01 * np.random.default_rng(1).standard_normal(mask.sum())
    edges = edge_mask(mag, mask, VOXEL, percentage=0.3)
    boundary = boundary_components(mask)
    assert boundary.any()
    assert np.all(edges[boundary])


def test_it_finds_a_strong_magnitude_step_before_noise() -> None:
    shape = (32, 32, 16)
    mask = np.ones(shape, bool)
    rng = np.random.default_rng(2)
    mag = (1.0 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
    mag[16:] += 1.0  # one plane of strong edges along axis 0
    edges = edge_mask(mag, mask, VOXEL, percentage=0.05)
    assert edges[0, 15].all()


def test_it_rejects_mismatched_shapes() -> None:
    with pytest.raises(ReconInputError, match="same 3-D shape"):
        edge_mask(np.ones((4, 4, 4)), np.ones((4, 4, 5), bool), VOXEL)
