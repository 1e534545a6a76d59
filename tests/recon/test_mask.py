"""Brain mask from magnitude and erosion in mm on anisotropic grids."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconInputError
from recon.mask import brain_mask, erode_mask


def test_it_finds_the_intracranial_region_of_the_phantom(small_phantom):
    m = brain_mask(small_phantom.magnitude, small_phantom.voxel_size)
    truth = small_phantom.brain_mask
    dice = 2 * (m & truth).sum() / (m.sum() + truth.sum())
    assert dice > 0.9
    # The scalp, separated from the brain by the dark skull, is not in the mask.
    scalp = (small_phantom.tissue == 0) & (small_phantom.chi_ppm == 0)
    assert (m & scalp).sum() < 0.02 * m.sum()


def test_it_erodes_by_millimetres_not_voxels():
    vs = (0.5, 1.0, 2.0)
    m = np.zeros((40, 20, 12), dtype=bool)
    m[5:35, 5:15, 3:9] = True
    e = erode_mask(m, vs, 1.5)
    # Rule: keep voxels whose distance to the nearest outside voxel centre is > 1.5 mm.
    # x: boundary voxel is 0.5 mm from outside -> drop 3 voxels (0.5, 1.0, 1.5) from each side.
    # y: 1.0 mm per voxel -> drop 2 (1.0, 1.5 is not reached: 1.0, 2.0 -> drop 1? 1.0 <= 1.5 drop,
    #    2.0 > 1.5 keep) -> drop 1 voxel; z: 2.0 mm > 1.5 -> drop none.
    xs, ys, zs = np.nonzero(e)
    assert (xs.min(), xs.max()) == (8, 31)
    assert (ys.min(), ys.max()) == (6, 13)
    assert (zs.min(), zs.max()) == (3, 8)


def test_it_treats_the_array_edge_as_outside():
    m = np.ones((10, 10, 10), dtype=bool)
    e = erode_mask(m, (1.0, 1.0, 1.0), 1.0)
    assert not e[0].any() and e[1:-1, 1:-1, 1:-1].all()


def test_it_does_not_modify_its_input():
    m = np.ones((8, 8, 8), dtype=bool)
    erode_mask(m, (1, 1, 1), 2.0)
    assert m.all()


def test_it_rejects_a_constant_magnitude():
    with pytest.raises(ReconInputError, match="constant"):
        brain_mask(np.ones((20, 20, 20)), (1, 1, 1))


def test_it_erodes_an_off_centre_mask_by_the_exact_distance_rule() -> None:
    # A box far from the array edge, d = 1.5 mm: a face voxel of the 1 mm axes is 1 mm from the
    # outside (removed), the next one 2 mm (kept); along the 2 mm axis the face voxel is already
    # 2 mm away (kept). Diagonal neighbours are farther, so the result is a box again.
    m = np.zeros((30, 30, 12), dtype=bool)
    m[10:20, 8:22, 3:9] = True
    out = erode_mask(m, (1.0, 1.0, 2.0), 1.5)
    expected = np.zeros_like(m)
    expected[11:19, 9:21, 3:9] = True
    np.testing.assert_array_equal(out, expected)


def test_it_fills_holes_in_every_slice_like_scipy_slice_by_slice() -> None:
    import scipy.ndimage as ndi

    from recon.mask import _fill_holes_per_slice

    rng = np.random.default_rng(7)
    m = rng.random((40, 36, 8)) > 0.35
    expected = m.copy()
    for z in range(m.shape[2]):
        expected[:, :, z] = ndi.binary_fill_holes(m[:, :, z])
    np.testing.assert_array_equal(_fill_holes_per_slice(m), expected)
