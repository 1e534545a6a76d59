"""The synthetic head: labels, wrapping, determinism, geometry."""

from __future__ import annotations

import numpy as np
import pytest

from recon.constants import GAMMA_HZ_PER_T
from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine
from recon.phantom import make_phantom
from tests.recon.conftest import SMALL_SHAPE, SMALL_VOXEL


def test_it_has_every_tissue_code_and_lesion_type(small_phantom):
    assert set(np.unique(small_phantom.tissue)) == {0, 1, 2, 3}
    assert set(small_phantom.lesion_types.values()) == {"wm", "cortical", "mixed"}
    ids = set(np.unique(small_phantom.lesions)) - {0}
    assert ids == set(small_phantom.lesion_types)
    assert small_phantom.tissue.dtype == np.uint8 and small_phantom.lesions.dtype == np.int16


def test_it_wraps_the_phase(small_phantom):
    ph = small_phantom.phase
    assert ph.min() >= -np.pi and ph.max() < np.pi
    # The brain's field spans several cycles, so wrapping really happened.
    rad = 2 * np.pi * GAMMA_HZ_PER_T * small_phantom.b0 * small_phantom.te[0] * 1e-6 * small_phantom.field_ppm
    assert np.ptp(rad[small_phantom.brain_mask]) > 4 * np.pi


def test_it_is_deterministic_with_a_seed():
    a = make_phantom((48, 48, 24), (2.4, 2.6, 4.0), seed=3)
    b = make_phantom((48, 48, 24), (2.4, 2.6, 4.0), seed=3)
    c = make_phantom((48, 48, 24), (2.4, 2.6, 4.0), seed=4)
    np.testing.assert_array_equal(a.phase, b.phase)
    np.testing.assert_array_equal(a.lesions, b.lesions)
    assert not np.array_equal(a.phase, c.phase)


def test_its_affine_carries_voxel_size_and_b0_direction():
    b0 = np.array([0.2, -0.1, 0.97])
    p = make_phantom((48, 48, 24), (2.4, 2.6, 4.0), b0_dir=tuple(b0))
    assert voxel_size_from_affine(p.affine) == pytest.approx((2.4, 2.6, 4.0))
    assert b0_direction_from_affine(p.affine) == pytest.approx(tuple(b0 / np.linalg.norm(b0)))


def test_it_gives_4d_data_for_several_echoes_with_t2star_decay():
    p = make_phantom((48, 48, 24), (2.4, 2.6, 4.0), te=(0.005, 0.015, 0.025))
    assert p.magnitude.shape == (48, 48, 24, 3) and p.phase.shape == p.magnitude.shape
    wm = (p.tissue == 3) & (p.lesions == 0)
    means = [p.magnitude[..., k][wm].mean() for k in range(3)]
    assert means[0] > means[1] > means[2]


def test_it_puts_known_susceptibilities_in_place(small_phantom):
    chi, t = small_phantom.chi_ppm, small_phantom.tissue
    clean = small_phantom.lesions == 0
    assert np.median(chi[(t == 3) & clean]) == pytest.approx(-0.03)
    gp = small_phantom.deep_grey == 4
    assert chi[gp].mean() == pytest.approx(0.18)
    assert chi[small_phantom.veins].max() == pytest.approx(0.40)
    for lid, kind in small_phantom.lesion_types.items():
        lesion = small_phantom.lesions == lid
        if kind == "wm":
            assert np.all(chi[lesion] > -0.03)
        if kind == "cortical":
            assert np.all(chi[lesion] < 0.02)


def test_its_flair_shows_lesions_bright(small_phantom):
    f = small_phantom.flair
    assert f[small_phantom.lesions > 0].mean() > 1.5 * f[(small_phantom.tissue == 3) & (small_phantom.lesions == 0)].mean()


def test_it_rejects_a_tiny_grid():
    with pytest.raises(ReconInputError):
        make_phantom((8, 8, 8), SMALL_VOXEL)
    assert SMALL_SHAPE[0] >= 16


def test_its_local_field_adds_up_over_disjoint_regions(small_phantom):
    # Fields superpose: WM's field plus GM's field is the field of both, on both.
    from recon.phantom import local_field

    ph = small_phantom
    wm, gm = ph.tissue == 3, ph.tissue == 2
    both = local_field(ph, wm | gm)
    assert both.dtype == np.float32 and np.all(both[~(wm | gm)] == 0)
    assert np.abs(both[wm | gm]).max() > 0.01  # radians: the lesions and nuclei are there
    region = wm | gm
    whole = np.where(region, both, 0.0)
    # Each part's field, evaluated on the union, must sum to the union's field.
    parts = _local_field_on(ph, wm, region) + _local_field_on(ph, gm, region)
    np.testing.assert_allclose(parts[region], whole[region], atol=1e-4 * np.abs(whole).max())


def _local_field_on(ph, sources, where):
    """The field of the sources in ``sources`` evaluated on ``where`` (via a copy with chi zeroed)."""
    from dataclasses import replace

    from recon.phantom import local_field

    only = replace(ph, chi_ppm=np.where(sources, ph.chi_ppm, 0.0).astype(np.float32))
    return local_field(only, where)


def test_its_local_field_noise_has_the_gradient_echo_phase_sd(small_phantom):
    from recon.phantom import local_field

    ph = small_phantom
    mask = ph.brain_mask
    noisy = local_field(ph, mask, snr=20.0, seed=3)
    clean = local_field(ph, mask)
    mag = ph.magnitude if ph.magnitude.ndim == 3 else ph.magnitude[..., 0]
    rel = mag / mag[mask].mean()
    typical = mask & (np.abs(rel - 1.0) < 0.1)
    assert np.std((noisy - clean)[typical]) == pytest.approx(1 / 20.0, rel=0.1)
    with pytest.raises(ReconInputError, match="snr must be positive"):
        local_field(ph, mask, snr=0.0)
    with pytest.raises(ReconInputError, match="mask has shape"):
        local_field(ph, mask[:-1])


def test_its_field_is_the_dipole_field_of_its_own_susceptibility(small_phantom):
    # The truth must be what made the data: the dipole field of chi_ppm (relative to the air the
    # head sits in, zero padded as the phantom pads) is the phantom's field everywhere in the
    # brain, up to the shim's constant. Any susceptibility the forward model used but chi_ppm
    # left out (the partial-volume blur of the skull and sinus) would show up here.
    from recon.dipole import forward_field
    from recon.mask import erode_mask
    from recon.phantom import CHI_AIR, field_pad

    ph = small_phantom
    field = forward_field(ph.chi_ppm - np.float32(CHI_AIR), ph.voxel_size, ph.b0_dir, pad=field_pad(ph.chi_ppm.shape))
    for region in (ph.brain_mask, erode_mask(ph.brain_mask, ph.voxel_size, 2.5)):
        got = ph.field_ppm[region] - ph.field_ppm[region].mean()
        want = field[region] - field[region].mean()
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)  # ppm; the field spans ~1 ppm here
