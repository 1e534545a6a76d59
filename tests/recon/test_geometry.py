"""Voxel sizes and the B0 direction from affines, checked against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine


def test_it_reads_b0_along_z_for_an_identity_affine():
    a = np.diag([0.47, 0.6, 1.0, 1.0])
    assert voxel_size_from_affine(a) == pytest.approx((0.47, 0.6, 1.0))
    assert b0_direction_from_affine(a) == pytest.approx((0.0, 0.0, 1.0))


def test_it_flips_b0_with_a_flipped_slice_axis():
    a = np.diag([-0.5, 0.5, -2.0, 1.0])  # LPI-like storage: third axis points inferior
    assert b0_direction_from_affine(a) == pytest.approx((0.0, 0.0, -1.0))


def test_it_tilts_b0_for_an_oblique_slab():
    # Slab rotated by 20 degrees about x: voxel axis 3 points along (0, -sin, cos) in world.
    t = np.deg2rad(20.0)
    r = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    a = np.eye(4)
    a[:3, :3] = r @ np.diag([0.47, 0.47, 1.0])
    # B0 = world z; in voxel axes R^T z = (0, sin t, cos t).
    assert b0_direction_from_affine(a) == pytest.approx((0.0, np.sin(t), np.cos(t)), abs=1e-12)
    assert voxel_size_from_affine(a) == pytest.approx((0.47, 0.47, 1.0))


def test_it_rejects_a_singular_affine():
    with pytest.raises(ReconInputError):
        voxel_size_from_affine(np.diag([1.0, 0.0, 1.0, 1.0]))
