"""The fast (ADMM) and toolbox (Gauss-Newton/CG) MEDI solvers on the same data.

The toolbox's stopping rules end it 15-26 % (NRMSE) from its own minimiser, so the default solver
is not asked to reproduce its map on the pipeline's field (issue 15): its objective must be no
higher than the toolbox's and within 3 % of the minimum (found by a long ADMM run), and every
lesion within 0.002 ppm of the minimiser's (not met yet: a strict xfail). On a dipole-consistent
field, where the toolbox nearly converges, the two maps must agree to NRMSE 0.10 and 0.002 ppm
per lesion. These hold on this 128 x 128 x 40 phantom; at full size (384 x 384 x 90) the default
ends 4.75 % above the best objective found and the toolbox does not converge on the consistent
field (NRMSE 0.28 between the maps): see docs/medi.md and benchmarks/solver_agreement.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage

from recon.constants import GAMMA_HZ_PER_T
from recon.inversion import medi
from recon.metrics import lesion_agreement, nrmse
from tests.recon.susceptibility_factory import make_scene

MAX_NRMSE = 0.05  # noiseless scene only
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
    # Measured: NRMSE 0.141 (admm) and 0.113 (toolbox); lesions within 0.0030 and 0.0015 ppm of the truth
    # (true relative susceptibilities are 0.012-0.035 ppm in magnitude). A zero map scores 1.0.
    from recon.metrics import relative_susceptibility

    m = local_field_maps
    chi = m.maps[solver]
    print(f"{solver}: NRMSE {nrmse(chi, m.truth, m.mask, demean=True):.3f}, lesions {lesion_agreement(chi, m.truth, m.lesions, m.tissue, mask=m.mask).max_error:.4f} ppm")
    assert nrmse(chi, m.truth, m.mask, demean=True) <= 0.2
    got = relative_susceptibility(chi, m.lesions, m.tissue, mask=m.mask)
    want = relative_susceptibility(m.truth, m.lesions, m.tissue, mask=m.mask)
    assert len(want) >= 10 and set(got) == set(want)
    assert lesion_agreement(chi, m.truth, m.lesions, m.tissue, mask=m.mask).max_error <= 0.005


def test_it_agrees_with_the_toolbox_on_the_phantoms_own_local_field(local_field_maps: LocalFieldMaps) -> None:
    # Measured (seed 0, the phantom's brain mask eroded 2.5 mm): NRMSE 0.092, lesions within
    # 0.0014 ppm; on the pipeline's eroded mask (benchmarks/solver_agreement.py, seeds 0-2) 0.073.
    m = local_field_maps
    fast, ref = m.maps["admm"], m.maps["toolbox"]
    a = lesion_agreement(fast, ref, m.lesions, m.tissue, mask=m.mask)
    print(f"admm vs toolbox: NRMSE {nrmse(fast, ref, m.mask, demean=True):.3f}, lesions {a.max_error:.4f} ppm")
    assert nrmse(fast, ref, m.mask, demean=True) <= 0.10
    assert a.n >= 10 and a.max_error <= MAX_LESION_DIFF_PPM


@dataclass
class PipelineFieldMaps:
    """The solvers on the pipeline's local field of the test phantom, in ppm, with objectives."""

    maps: dict[str, np.ndarray]
    objective: dict[str, float]
    lesions: np.ndarray
    tissue: np.ndarray
    mask: np.ndarray

    def gap(self, name: str) -> float:
        """How far (relative) the map ``name`` lies above the minimum of the objective."""
        return self.objective[name] / self.objective["minimiser"] - 1.0


@pytest.fixture(scope="module")
def pipeline_field_maps() -> PipelineFieldMaps:
    """Default ADMM, the toolbox solver and a long ADMM run (the minimiser) on one local field.

    The minimum is found by ADMM run to a relative change of 1e-4 (~620 iterations here, ~13 s): a
    run to 1e-5 (2029 iterations) lies only 0.023 % lower, NRMSE 0.019 and every lesion within
    0.0003 ppm of it, so the long run stands for the minimiser to well within the bounds below.
    Every map is scored on one objective, the default solver's: :func:`recon.inversion.medi_objective`
    (exact L1) on the mask's box plus 6 mm; the toolbox's map, solved on the image grid, is cropped
    to that box.
    """
    from recon.inversion import medi_objective
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
    runs = {
        "default": {"solver": "admm"},
        "toolbox": {"solver": "toolbox"},
        "minimiser": {"solver": "admm", "tol": 1e-4, "max_iter": 3000},
    }
    maps, objective = {}, {}
    for name, options in runs.items():
        res = medi(q.local_field, q.eroded_mask, ph.voxel_size, return_solution=True, **kw, **options)
        assert res.solution is not None
        maps[name] = res.chi * to_ppm
        objective[name] = medi_objective(res.solution, q.local_field, q.eroded_mask, ph.voxel_size, margin_mm=6.0, **kw)["total"]
    return PipelineFieldMaps(maps, objective, ph.lesions, ph.tissue, q.eroded_mask)


def test_its_long_run_is_the_lowest_objective(pipeline_field_maps: PipelineFieldMaps) -> None:
    # The reference of the checks below must be the minimum of what was tried.
    m = pipeline_field_maps
    assert all(m.gap(name) >= -1e-4 for name in m.objective), {n: m.gap(n) for n in m.objective}


def test_its_default_solver_ends_within_3_percent_of_the_minimum_and_below_the_toolbox(
    pipeline_field_maps: PipelineFieldMaps, record_property: Callable[[str, object], None]
) -> None:
    # The toolbox's stopping rules (CG cut at 100 iterations, stop at a 10 % update) end it short
    # of the minimiser, so no converged solver can match its map; the default must minimise the
    # objective at least as well. Measured (seed 0, shared 2-core machine): gaps to the minimum
    # +2.2 % (default) and +29 % (toolbox, cropped to the box, which costs it: on its own image
    # grid against a long run there it is +10 %, benchmarks/solver_agreement.py --toolbox-grid);
    # the default's map lies NRMSE 0.142 from the minimiser's.
    m = pipeline_field_maps
    to_min = nrmse(m.maps["default"], m.maps["minimiser"], m.mask, demean=True)
    lesions = lesion_agreement(m.maps["default"], m.maps["minimiser"], m.lesions, m.tissue, mask=m.mask)
    for key, value in (
        ("gap_default", m.gap("default")), ("gap_toolbox", m.gap("toolbox")),
        ("nrmse_default_to_minimiser", to_min), ("lesion_default_to_minimiser_ppm", lesions.max_error),
    ):
        record_property(key, value)
    print(
        f"objective gap to the minimum: default {100 * m.gap('default'):+.2f} %, toolbox {100 * m.gap('toolbox'):+.2f} %; "
        f"default to the minimiser: NRMSE {to_min:.3f}, largest lesion difference {lesions.max_error:.4f} ppm (lesion {lesions.worst})"
    )
    assert m.objective["default"] <= m.objective["toolbox"]
    assert m.gap("default") <= 0.03


@pytest.mark.xfail(
    strict=True,
    reason=(
        "open (issue 15): the default stopping rule (relative change 3e-3) leaves lesion 7 0.0026 ppm "
        "from the minimiser's (bound 0.002; seeds 1, 2: see docs/medi.md); ADMM to 1e-3 meets it (0.0016 ppm) with 2.2x the "
        "iterations, which the 30 s full-size budget does not allow. Decision needed; see docs/medi.md"
    ),
)
def test_its_default_solvers_lesions_are_within_0_002_ppm_of_the_minimisers(pipeline_field_maps: PipelineFieldMaps) -> None:
    m = pipeline_field_maps
    lesions = lesion_agreement(m.maps["default"], m.maps["minimiser"], m.lesions, m.tissue, mask=m.mask)
    assert lesions.n >= 10 and lesions.max_error <= MAX_LESION_DIFF_PPM, lesions
