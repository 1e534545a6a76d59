"""Multi-echo fit recovers a known frequency and phase offset."""

from __future__ import annotations

import numpy as np
import pytest

from recon.echofit import fit_echoes
from recon.errors import ReconInputError
from tests.recon.conftest import grid_mm


def test_it_recovers_frequency_and_offset_from_three_echoes():
    shape, vs = (64, 64, 32), (1.0, 1.2, 2.0)
    g = grid_mm(shape, vs)
    # Whole-grid mask and a field vanishing at the grid edge: Laplacian unwrapping is then exact
    # up to a constant (in a smaller mask it is exact up to a harmonic function).
    mask = np.ones(shape, dtype=bool)
    freq = (2 * np.pi * 60.0 * np.exp(-(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) / 200.0)).astype(np.float32)  # rad/s
    offset = 1.1
    te = (0.004, 0.009, 0.014)
    rng = np.random.default_rng(1)
    mag = np.ones(shape + (3,), np.float32)
    phase = np.stack([np.angle(np.exp(1j * (freq * t + offset))) for t in te], axis=-1)
    phase += 0.01 * rng.standard_normal(phase.shape)
    fit = fit_echoes(phase, mask, vs, te=te, magnitude=mag)
    # Laplacian unwrapping leaves a constant (possibly 2 pi k per echo) -> compare de-meaned.
    df = fit.frequency - freq
    # Phase noise 0.01 rad gives a slope std error of 1.4 rad/s: rms within that, max within 8 sigma.
    resid = (df - df[mask].mean())[mask]
    assert np.sqrt(np.mean(resid**2)) < 1.6
    assert np.abs(resid).max() < 12.0
    do = fit.offset - offset
    # Intercept std error with these TEs: 0.01 * sqrt(sum t^2 / (3 sum (t - mean)^2)) = 0.014 rad.
    off = np.angle(np.exp(1j * (do - do[mask].mean())))[mask]
    assert np.sqrt(np.mean(off**2)) < 0.02 and np.abs(off).max() < 0.1
    # Noise: std error of the slope with phase noise 0.01 rad and unit magnitudes.
    t = np.asarray(te)
    expected = 0.01 / np.sqrt(((t - t.mean()) ** 2).sum())
    assert np.median(fit.noise[mask]) == pytest.approx(expected, rel=0.3)


def test_it_divides_by_te_for_one_echo():
    shape, vs = (32, 32, 16), (1.0, 1.0, 2.0)
    mask = np.zeros(shape, bool)
    mask[4:-4, 4:-4, 3:-3] = True
    phase = np.full(shape, 0.5, np.float32)
    fit = fit_echoes(phase, mask, vs, te=0.02, magnitude=np.full(shape, 2.0, np.float32))
    np.testing.assert_allclose(fit.frequency[mask], 25.0, rtol=1e-4)
    np.testing.assert_allclose(fit.noise[mask], 1 / (2.0 * 0.02), rtol=1e-4)


def test_it_rejects_a_te_count_mismatch():
    with pytest.raises(ReconInputError, match="echo time"):
        fit_echoes(np.zeros((8, 8, 8, 3)), np.ones((8, 8, 8), bool), (1, 1, 1), te=(0.01, 0.02))
