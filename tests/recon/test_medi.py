"""MEDI dipole inversion on noiseless synthetic scenes and on phantoms, with a known susceptibility."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconInputError
from recon.fft import solve_box
from recon.inversion import medi
from tests.recon.susceptibility_factory import Scene, make_scene

#: Noiseless data: each sphere's mean relative to the 0 ppm shell must come back this close.
TOL_PPM = 0.003


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


def _relative_means(chi_ppm: np.ndarray, s: Scene) -> np.ndarray:
    ref = chi_ppm[s.reference].mean()
    return np.array([chi_ppm[s.labels == i].mean() - ref for i in range(1, len(s.sphere_ppm) + 1)])


@pytest.mark.parametrize("solver", ["admm", "toolbox"])
def test_it_recovers_each_sphere_susceptibility(scene: Scene, solver: str) -> None:
    res = medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude, solver=solver)
    chi_ppm = res.chi / scene.rad_per_ppm
    np.testing.assert_allclose(_relative_means(chi_ppm, scene), scene.sphere_ppm, atol=TOL_PPM)
    white = (scene.chi_ppm == np.float32(-0.03)) & (scene.labels == 0)
    assert chi_ppm[white].mean() - chi_ppm[scene.reference].mean() == pytest.approx(-0.03, abs=TOL_PPM)
    assert res.converged
    assert res.solver == solver


def test_it_flips_sign_with_the_field(scene: Scene) -> None:
    res = medi(-scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude)
    rel = _relative_means(res.chi / scene.rad_per_ppm, scene)
    np.testing.assert_allclose(rel, -np.asarray(scene.sphere_ppm), atol=TOL_PPM)


def test_it_handles_an_oblique_b0_direction() -> None:
    b0_dir = (0.3, 0.1, 0.95)
    s = make_scene(b0_dir=b0_dir)
    res = medi(s.field_rad, s.mask, s.voxel_size, magnitude=s.magnitude, b0_dir=b0_dir)
    np.testing.assert_allclose(_relative_means(res.chi / s.rad_per_ppm, s), s.sphere_ppm, atol=TOL_PPM)


def test_it_references_chi_to_the_csf_mean_with_medi_plus_zero(scene: Scene) -> None:
    # The 0 ppm shell plays the CSF: chi is then absolute, not only relative.
    res = medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude, csf_mask=scene.reference)
    chi_ppm = res.chi / scene.rad_per_ppm
    assert chi_ppm[scene.reference].mean() == pytest.approx(0.0, abs=1e-6)
    means = [chi_ppm[scene.labels == i].mean() for i in range(1, 5)]
    np.testing.assert_allclose(means, scene.sphere_ppm, atol=TOL_PPM)


def test_it_runs_with_smv_on_an_eroded_mask(scene: Scene) -> None:
    res = medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude, smv_radius_mm=3.0)
    assert res.mask.sum() < scene.mask.sum()
    assert np.all(res.chi[~res.mask] == 0)
    chi_ppm = res.chi / scene.rad_per_ppm
    inside = res.mask[scene.labels == 1].all()
    assert inside
    assert chi_ppm[scene.labels == 1].mean() - chi_ppm[scene.reference & res.mask].mean() == pytest.approx(0.15, abs=0.015)


def test_it_returns_float32_radians_zero_outside_the_mask_and_reports_work(scene: Scene) -> None:
    calls: list[tuple[float, str]] = []
    res = medi(
        scene.field_rad,
        scene.mask,
        scene.voxel_size,
        magnitude=scene.magnitude,
        progress=lambda f, stage: calls.append((f, stage)),
    )
    assert res.chi.dtype == np.float32 and res.chi.shape == scene.mask.shape
    assert np.all(res.chi[~scene.mask] == 0)
    assert res.fft_count >= 4 * res.iterations
    assert {"setup", "edges", "solve", "finish", "total"} <= set(res.timings)
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert res.edge_mask.shape == (3, *scene.mask.shape)


def test_it_does_not_modify_its_inputs(scene: Scene) -> None:
    field = scene.field_rad.copy()
    mag = scene.magnitude.copy()
    medi(field, scene.mask, scene.voxel_size, magnitude=mag, max_iter=3)
    np.testing.assert_array_equal(field, scene.field_rad)
    np.testing.assert_array_equal(mag, scene.magnitude)


def test_it_weights_by_inverse_noise_like_by_magnitude(scene: Scene) -> None:
    by_mag = medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude)
    noise = np.where(scene.mask, 1.0 / np.maximum(scene.magnitude, 1e-3), 1.0).astype(np.float32)
    by_noise = medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude, noise=noise)
    np.testing.assert_allclose(by_noise.chi, by_mag.chi, atol=1e-4)


def test_it_solves_on_the_image_grid_for_the_toolbox_and_on_the_mask_box_for_admm(scene: Scene) -> None:
    # MEDI_L1.m convolves periodically on the whole matrix; its early-stopped result depends on it.
    args = (scene.field_rad, scene.mask, scene.voxel_size)
    tb = medi(*args, magnitude=scene.magnitude, solver="toolbox", max_iter=1)
    assert tb.solve_shape == scene.mask.shape
    fast = medi(*args, magnitude=scene.magnitude, max_iter=3)
    assert fast.solve_shape == solve_box(scene.mask, scene.voxel_size, margin_mm=6.0).shape
    whole = medi(*args, magnitude=scene.magnitude, max_iter=3, margin_mm=None)
    assert whole.solve_shape == scene.mask.shape
    boxed = medi(*args, magnitude=scene.magnitude, solver="toolbox", max_iter=1, margin_mm=0.0)
    assert np.prod(boxed.solve_shape) < np.prod(scene.mask.shape)
    assert boxed.chi.shape == scene.mask.shape


class TestBadInput:
    def test_it_rejects_nan_in_the_field(self, scene: Scene) -> None:
        field = scene.field_rad.copy()
        field[32, 32, 16] = np.nan
        with pytest.raises(ReconInputError, match="NaN"):
            medi(field, scene.mask, scene.voxel_size)

    def test_it_rejects_an_empty_mask(self, scene: Scene) -> None:
        with pytest.raises(ReconInputError, match="mask is empty"):
            medi(scene.field_rad, np.zeros_like(scene.mask), scene.voxel_size)

    def test_it_rejects_a_shape_mismatch(self, scene: Scene) -> None:
        with pytest.raises(ReconInputError, match="shape"):
            medi(scene.field_rad, scene.mask[:, :, :-1], scene.voxel_size)
        with pytest.raises(ReconInputError, match="magnitude has shape"):
            medi(scene.field_rad, scene.mask, scene.voxel_size, magnitude=scene.magnitude[:-1])

    def test_it_rejects_a_bad_voxel_size_or_solver(self, scene: Scene) -> None:
        with pytest.raises(ReconInputError, match="voxel size"):
            medi(scene.field_rad, scene.mask, (1.0, 0.0, 1.0))
        with pytest.raises(ReconInputError, match="solver"):
            medi(scene.field_rad, scene.mask, scene.voxel_size, solver="tkd")
        with pytest.raises(ReconInputError, match="unknown option"):
            medi(scene.field_rad, scene.mask, scene.voxel_size, cg_tol=0.1)

    @pytest.mark.parametrize("margin", [-1.0, float("nan"), "6"])
    def test_it_rejects_a_bad_margin(self, scene: Scene, margin: object) -> None:
        with pytest.raises(ReconInputError, match="margin_mm must be"):
            medi(scene.field_rad, scene.mask, scene.voxel_size, margin_mm=margin)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_it_recovers_cortex_and_lesions_of_five_phantoms_from_their_own_local_field(seed: int) -> None:
    # The field of each phantom's in-mask susceptibility plus SNR-50 phase noise: no background
    # removal, so what is wrong is the inversion's. Measured (seeds 0-4, after issue 15's phantom change): cortex - WM
    # at 0.992-0.994 of the truth, lesion correlation >= 0.9996, largest lesion error 0.0008-0.0015 ppm. Through
    # the whole pipeline seed 3 misses the lesion criteria (docs/recon.md, accuracy).
    from recon.constants import GAMMA_HZ_PER_T
    from recon.mask import erode_mask
    from recon.metrics import lesion_agreement
    from recon.phantom import local_field, make_phantom

    ph = make_phantom((96, 96, 48), (1.2, 1.3, 2.0), te=(0.0177,), snr=50.0, seed=seed)
    mask = erode_mask(ph.brain_mask, ph.voxel_size, 2.5)
    field = local_field(ph, mask, snr=50.0, seed=seed)
    res = medi(field, mask, ph.voxel_size, magnitude=ph.magnitude, b0_dir=ph.b0_dir)
    chi = res.chi / np.float32(2 * np.pi * GAMMA_HZ_PER_T * ph.b0 * ph.te[0] * 1e-6)
    wm = (ph.tissue == 3) & (ph.lesions == 0) & mask
    cortex = (ph.tissue == 2) & (ph.deep_grey == 0) & (ph.lesions == 0) & mask
    true_c = ph.chi_ppm[cortex].mean() - ph.chi_ppm[wm].mean()
    assert chi[cortex].mean() - chi[wm].mean() == pytest.approx(true_c, rel=0.05)
    a = lesion_agreement(chi, ph.chi_ppm, ph.lesions, ph.tissue, mask=mask)
    assert a.n_strong >= 8 and a.meets(sign_fraction=1.0, correlation=0.99), a
    assert a.max_error <= 0.003, a


class TestObjective:
    """medi_objective: the MEDI objective at a given map, checked against the formula by hand."""

    def test_it_is_the_weighted_phase_misfit_at_zero_and_zero_on_a_consistent_field(self) -> None:
        # f = D chi on the image grid (the periodic convolution the toolbox uses): at chi the data
        # term vanishes and E is the L1 of the penalised gradient; at 0 it is
        # lam sum W^2 (2 - 2 cos f), W = (1 / noise) / its mean in the mask.
        from recon.dipole import dipole_kernel
        from recon.inversion import medi_objective
        from recon.inversion.edges import edge_mask

        rng = np.random.default_rng(7)
        shape, vs = (20, 18, 16), (1.0, 1.2, 1.5)
        chi = ndimage_smooth(rng.standard_normal(shape), 2.0).astype(np.float32)
        kernel = dipole_kernel(shape, vs, (0.0, 0.0, 1.0))
        field = np.fft.irfftn(kernel * np.fft.rfftn(chi.astype(np.float64)), s=shape, axes=(0, 1, 2))
        mask = np.zeros(shape, bool)
        mask[4:16, 3:15, 3:13] = True
        noise = rng.uniform(0.5, 2.0, shape)
        w = np.where(mask, 1.0 / noise, 0.0)
        w /= w[mask].mean()
        lam = 1000.0

        at_zero = medi_objective(np.zeros(shape), field, mask, vs, noise=noise, lam=lam)
        assert at_zero["reg"] == 0.0
        want = lam * np.sum(w[mask] ** 2 * (2 - 2 * np.cos(field[mask])))
        assert at_zero["data"] == pytest.approx(want, rel=1e-5)
        assert at_zero["total"] == pytest.approx(want, rel=1e-5)

        at_chi = medi_objective(chi + 3.0, field, mask, vs, noise=noise, lam=lam)  # a constant is free
        assert at_chi["data"] == pytest.approx(0.0, abs=1e-6 * want)
        edges = edge_mask(mask.astype(np.float32), mask, vs, percentage=0.9)
        l1 = 0.0
        for a in range(3):
            g = np.diff(chi.astype(np.float64), axis=a) / vs[a]  # forward differences, none on the last plane
            keep = ~np.take(edges[a], np.arange(shape[a] - 1), axis=a)
            l1 += np.abs(g[keep]).sum()
        assert at_chi["reg"] == pytest.approx(l1, rel=1e-4)

    def test_it_scores_the_unmasked_solution_that_medi_returns(self, scene: Scene) -> None:
        # On the image grid (margin_mm=None) the solution holds all of the solver's x, so its
        # objective is the one the solver reported.
        from recon.inversion import medi_objective

        args = (scene.field_rad, scene.mask, scene.voxel_size)
        res = medi(*args, magnitude=scene.magnitude, margin_mm=None, return_solution=True)
        assert res.solution is not None and np.any(res.solution[~scene.mask] != 0)
        np.testing.assert_array_equal(res.solution[scene.mask], res.chi[scene.mask])
        e = medi_objective(res.solution, *args, magnitude=scene.magnitude)
        assert e["total"] == pytest.approx(res.cost["total"], rel=1e-5)
        masked = medi_objective(res.chi, *args, magnitude=scene.magnitude)
        assert masked["total"] > 1.1 * e["total"]  # D sees the susceptibility outside the mask too


def ndimage_smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(a, sigma)
