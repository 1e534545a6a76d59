"""The forward model against the analytic field of a uniformly magnetised sphere."""

from __future__ import annotations

import numpy as np
import pytest

from recon.dipole import dipole_kernel, forward_field
from tests.recon.conftest import grid_mm

DCHI = 1.0  # ppm


def sphere_case(voxel_size: tuple[float, float, float], b0_dir: tuple[float, float, float]):
    shape = (64, 64, 48)
    g = grid_mm(shape, voxel_size)
    a_nominal = 7.0
    r2 = g[0] ** 2 + g[1] ** 2 + g[2] ** 2
    # Partial-volume sphere (3x3x3 sub-voxels): a staircase sphere is not a sphere, and its
    # corners put ringing into the field, more so for an oblique B0.
    sub = 3
    fine = np.meshgrid(
        *[((np.arange(n * sub) + 0.5) / sub - 0.5 - (n - 1) / 2) * v for n, v in zip(shape, voxel_size)],
        indexing="ij",
        sparse=True,
    )
    inside = (fine[0] ** 2 + fine[1] ** 2 + fine[2] ** 2) <= a_nominal**2
    chi = (DCHI * inside.reshape(shape[0], sub, shape[1], sub, shape[2], sub).mean(axis=(1, 3, 5))).astype(np.float32)
    # Radius of the sphere with the staircase's volume: the far field only sees the moment.
    a = (3 * chi.sum() * np.prod(voxel_size) / (4 * np.pi)) ** (1 / 3)
    field = forward_field(chi, voxel_size, b0_dir, pad=32)
    b = np.asarray(b0_dir) / np.linalg.norm(b0_dir)
    r = np.sqrt(r2)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (g[0] * b[0] + g[1] * b[1] + g[2] * b[2]) / r
        analytic = DCHI / 3 * (a / r) ** 3 * (3 * cos**2 - 1)
    return field, analytic, r, a


@pytest.mark.parametrize("b0_dir", [(0.0, 0.0, 1.0), (0.3, -0.4, 0.866)], ids=["axial", "oblique"])
def test_it_matches_the_sphere_field_outside(b0_dir):
    field, analytic, r, a = sphere_case((0.8, 1.0, 1.25), b0_dir)
    shell = (r >= 1.6 * a) & (r <= 2.6 * a)
    err = np.abs(field - analytic)[shell]
    # Peak outside field is 2/3 * dchi at the pole; at 1.6 a it is ~0.16 ppm.
    assert err.max() < 0.012 * DCHI
    assert np.sqrt(np.mean(err**2)) < 0.003 * DCHI


@pytest.mark.parametrize("b0_dir", [(0.0, 0.0, 1.0), (0.3, -0.4, 0.866)], ids=["axial", "oblique"])
def test_it_gives_no_field_inside_the_sphere(b0_dir):
    field, _, r, a = sphere_case((0.8, 1.0, 1.25), b0_dir)
    # Lorentz-corrected kernel: the field inside a uniformly magnetised sphere is zero (up to
    # the discretisation of the sphere: ~0.1 % of dchi for an axial, ~3 % for an oblique B0).
    assert np.abs(field[r <= 0.5 * a]).max() < 0.04 * DCHI
    assert np.abs(field[r <= 0.5 * a]).mean() < 0.015 * DCHI


def test_it_puts_the_positive_lobe_along_b0_not_along_an_array_axis():
    b0 = (0.0, 1.0, 1.0)
    field, _, r, a = sphere_case((1.0, 1.0, 1.0), b0)
    # Point at 2 a along B0 (y = z) is positive (+2/3 (1/8)); along the orthogonal (y = -z) negative.
    n = (64, 64, 48)
    d = int(round(2 * a / np.sqrt(2)))
    c = [(s - 1) // 2 for s in n]
    along = field[c[0], c[1] + d, c[2] + d]
    across = field[c[0], c[1] + d, c[2] - d]
    assert along > 0.05 and across < -0.03


def test_it_has_zero_dc_and_the_right_extremes():
    d = dipole_kernel((8, 8, 8), (1.0, 1.0, 1.0), (0, 0, 1), rfft=False)
    assert d[0, 0, 0] == 0
    assert d[0, 0, 1] == pytest.approx(-2 / 3)  # k along B0
    assert d[1, 0, 0] == pytest.approx(1 / 3)  # k perpendicular to B0
