"""Background removal removes the field of outside sources and keeps inside ones."""

from __future__ import annotations

import numpy as np
import pytest

from recon.bgremove import pdf, vsharp
from recon.dipole import forward_field
from recon.errors import ReconInputError
from recon.mask import erode_mask
from tests.recon.conftest import grid_mm

SHAPE, VS = (80, 72, 48), (0.9, 1.1, 1.6)


def scene(b0_dir):
    g = grid_mm(SHAPE, VS)
    mask = (g[0] / 28) ** 2 + (g[1] / 30) ** 2 + (g[2] / 28) ** 2 < 1
    # An air-like sphere (9.4 ppm) in front of the brain, and an iron-rich nucleus inside.
    out = np.where((g[0] - 5) ** 2 + (g[1] - 44) ** 2 + (g[2] + 5) ** 2 < 8**2, 9.4, 0.0).astype(np.float32)
    inside = np.where((g[0] + 6) ** 2 + (g[1] - 2) ** 2 + (g[2] - 3) ** 2 < 4**2, 0.2, 0.0).astype(np.float32)
    bg = forward_field(out, VS, b0_dir, pad=24)
    loc = forward_field(inside, VS, b0_dir, pad=24)
    return mask, bg, loc


def rms(x):
    return float(np.sqrt(np.mean((x - x.mean()) ** 2)))


@pytest.mark.parametrize("b0_dir", [(0.0, 0.0, 1.0), (0.3, 0.2, 0.93)], ids=["axial", "oblique"])
def test_pdf_removes_an_outside_source_and_keeps_an_inside_one(b0_dir):
    mask, bg, loc = scene(b0_dir)
    ero = erode_mask(mask, VS, 5.0)
    local = pdf(bg + loc, mask, VS, b0_dir=b0_dir)
    resid = (local - loc)[ero]
    # Residual background < 15 % of the original background RMS (5 mm inside the boundary).
    assert rms(resid) < 0.15 * rms(bg[ero])
    assert np.corrcoef(local[ero], loc[ero])[0, 1] > 0.97
    assert np.all(local[~mask] == 0)


def test_vsharp_removes_an_outside_source_and_keeps_an_inside_one():
    mask, bg, loc = scene((0.0, 0.0, 1.0))
    local, eroded = vsharp(bg + loc, mask, VS)
    ero = eroded & erode_mask(mask, VS, 5.0)
    assert rms((local - loc)[ero]) < 0.05 * rms(bg[ero])
    assert np.corrcoef(local[ero], loc[ero])[0, 1] > 0.99
    # Eroded by the smallest sphere (2 x the largest voxel = 3.2 mm) but not by much more.
    assert eroded.sum() < mask.sum()
    assert (mask & ~eroded).sum() < mask.sum() - erode_mask(mask, VS, 4.0).sum()


def test_pdf_does_not_modify_its_input():
    mask, bg, loc = scene((0.0, 0.0, 1.0))
    f = bg + loc
    before = f.copy()
    pdf(f, mask, VS, max_iter=3)
    np.testing.assert_array_equal(f, before)


def test_it_rejects_nan_in_the_mask():
    mask, bg, _ = scene((0.0, 0.0, 1.0))
    bg[tuple(np.argwhere(mask)[0])] = np.nan
    with pytest.raises(ReconInputError, match="NaN"):
        pdf(bg, mask, VS)
    with pytest.raises(ReconInputError, match="NaN"):
        vsharp(bg, mask, VS)
