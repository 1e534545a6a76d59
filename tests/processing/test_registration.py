"""Rigid MI registration: known motions of a synthetic head recovered, geometry, errors."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.processing.registration import (
    RegistrationResult,
    apply_transform,
    rigid_register,
    rotation_angle_deg,
)
from recon.errors import ReconInputError

from . import TISSUE_OF_REGION, grid_affine, grid_points, render, rigid, rotation_xyz

FIXED_SHAPE = (64, 64, 56)
FIXED_AFFINE = grid_affine(FIXED_SHAPE, (2.0, 2.0, 2.0))


def residuals(
    result: RegistrationResult,
    true_fixed_to_moving: np.ndarray,
    brain_points: np.ndarray,
) -> tuple[float, float, float]:
    """Mean and max displacement error (mm) over brain points, and residual rotation (deg)."""
    est = brain_points @ result.fixed_to_moving[:3, :3].T + result.fixed_to_moving[:3, 3]
    true = brain_points @ true_fixed_to_moving[:3, :3].T + true_fixed_to_moving[:3, 3]
    err = np.linalg.norm(est - true, axis=1)
    r_res = true_fixed_to_moving[:3, :3].T @ result.fixed_to_moving[:3, :3]
    return float(err.mean()), float(err.max()), rotation_angle_deg(r_res)


@pytest.fixture(scope="module")
def fixed_head() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T2*-like magnitude on the 2 mm fixed grid, its brain mask and brain voxel centres (RAS)."""
    image, regions = render(FIXED_SHAPE, FIXED_AFFINE, "t2star", seed=1)
    brain = TISSUE_OF_REGION[regions] > 0
    return image, brain, grid_points(FIXED_SHAPE, FIXED_AFFINE)[brain]


def test_it_recovers_a_known_motion_between_t1_and_t2star_contrasts(fixed_head) -> None:
    fixed, brain, points = fixed_head
    motion = rigid((5.0, -4.0, 7.0), (3.0, -5.0, 4.0))
    moving, _ = render(FIXED_SHAPE, FIXED_AFFINE, "t1w", object_to_world=motion, seed=2)

    result = rigid_register(fixed, FIXED_AFFINE, moving, FIXED_AFFINE, fixed_mask=brain)

    mean_mm, max_mm, rot_deg = residuals(result, motion, points)
    assert mean_mm < 0.5 and max_mm < 0.5, (mean_mm, max_mm)
    assert rot_deg < 0.5
    assert result.rotation_deg == pytest.approx((5.0, -4.0, 7.0), abs=0.5)
    assert result.rotation_angle_deg == pytest.approx(rotation_angle_deg(motion[:3, :3]), abs=0.5)
    # The brain centre (the mask centroid) moves by the motion's shift at that point.
    centre = points.mean(axis=0)
    expected_shift = motion[:3, :3] @ centre + motion[:3, 3] - centre
    np.testing.assert_allclose(result.translation_mm, expected_shift, atol=0.5)
    # The resampled T1 must look like the same head imaged without motion.
    still, _ = render(FIXED_SHAPE, FIXED_AFFINE, "t1w", noise=0.0, seed=3)
    assert result.resampled.shape == FIXED_SHAPE and result.resampled.dtype == np.float32
    assert np.corrcoef(result.resampled[brain], still[brain])[0, 1] > 0.95
    assert result.coverage == pytest.approx(1.0)


def test_it_recovers_a_motion_with_anisotropic_voxels() -> None:
    # A GRE-like slab: 1.25 mm in plane, 3 mm slices; moving T1 1.5 mm isotropic, WM-nulled.
    shape = (96, 104, 36)
    affine = grid_affine(shape, (1.25, 1.25, 3.0))
    fixed, regions = render(shape, affine, "t2star", seed=4)
    brain = TISSUE_OF_REGION[regions] > 0
    moving_shape = (76, 84, 72)
    moving_affine = grid_affine(moving_shape, (1.5, 1.5, 1.5))
    motion = rigid((-6.0, 3.0, -4.0), (-2.0, 4.0, 6.0))
    moving, _ = render(moving_shape, moving_affine, "wm_nulled", object_to_world=motion, seed=5)

    result = rigid_register(fixed, affine, moving, moving_affine, fixed_mask=brain)

    mean_mm, max_mm, rot_deg = residuals(result, motion, grid_points(shape, affine)[brain])
    assert mean_mm < 0.5 and max_mm < 0.5, (mean_mm, max_mm)
    assert rot_deg < 0.5


def test_it_recovers_a_motion_onto_a_differently_oriented_grid_without_a_mask(fixed_head) -> None:
    # Moving grid: 1.8 mm, other shape, rotated 10 degrees about z and stored x-flipped (LAS).
    fixed, brain, points = fixed_head
    moving_shape = (60, 72, 60)
    moving_affine = grid_affine(
        moving_shape, (1.8, 1.8, 1.8), rotation=rotation_xyz((0.0, 0.0, 10.0)), flip_x=True
    )
    motion = rigid((3.0, 8.0, -5.0), (4.0, 2.0, -3.0))
    moving, _ = render(moving_shape, moving_affine, "t1w", object_to_world=motion, seed=6)

    result = rigid_register(fixed, FIXED_AFFINE, moving, moving_affine)

    mean_mm, max_mm, rot_deg = residuals(result, motion, points)
    assert mean_mm < 0.5 and max_mm < 0.5, (mean_mm, max_mm)
    assert rot_deg < 0.5
    assert result.resampled.shape == FIXED_SHAPE
    assert 0.5 < result.coverage < 1.0  # the moved head's FOV leaves a corner of the fixed grid


def test_it_is_reproducible_with_a_fixed_seed(fixed_head) -> None:
    fixed, brain, _ = fixed_head
    motion = rigid((2.0, 0.0, 3.0), (1.0, 2.0, 0.0))
    moving, _ = render(FIXED_SHAPE, FIXED_AFFINE, "t1w", object_to_world=motion, seed=7)
    kwargs = {
        "fixed_mask": brain, "seed": 3, "shrink_factors": (4, 2), "smoothing_sigmas_mm": (2, 1)
    }

    first = rigid_register(fixed, FIXED_AFFINE, moving, FIXED_AFFINE, **kwargs)
    second = rigid_register(fixed, FIXED_AFFINE, moving, FIXED_AFFINE, **kwargs)

    np.testing.assert_array_equal(first.fixed_to_moving, second.fixed_to_moving)
    np.testing.assert_array_equal(first.resampled, second.resampled)


def test_it_reports_progress_and_stops_when_the_callback_raises(fixed_head) -> None:
    fixed, brain, _ = fixed_head
    calls: list[tuple[float, str]] = []

    class Cancelled(Exception):
        pass

    def progress(fraction: float, stage: str) -> None:
        calls.append((fraction, stage))
        if len(calls) == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        rigid_register(
            fixed, FIXED_AFFINE, fixed, FIXED_AFFINE, fixed_mask=brain, progress=progress
        )
    assert len(calls) == 4
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] < 1.0
    assert calls[-1][1].startswith("registration level 1/3")


def test_it_reports_progress_up_to_done(fixed_head) -> None:
    fixed, brain, _ = fixed_head
    calls: list[tuple[float, str]] = []
    rigid_register(
        fixed, FIXED_AFFINE, fixed, FIXED_AFFINE, fixed_mask=brain,
        progress=lambda f, s: calls.append((f, s)),
    )
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert calls[-1] == (1.0, "done")
    assert len(calls) <= 110  # throttled to about one call per percent


# --------------------------------------------------------------------------------------------
# Geometry conventions, checked by hand: a bright voxel must land where its world position says.


def test_it_resamples_by_world_position_across_flipped_and_oblique_grids() -> None:
    # A Gaussian blob at a known world point, stored on an x-flipped grid rotated 90 degrees.
    moving_shape = (40, 44, 36)
    moving_affine = grid_affine(
        moving_shape, (1.5, 1.5, 2.0), rotation=rotation_xyz((0.0, 0.0, 90.0)), flip_x=True
    )
    centre_ras = np.array([-12.0, 7.0, 15.0])
    dist2 = np.sum((grid_points(moving_shape, moving_affine) - centre_ras) ** 2, axis=-1)
    moving = np.exp(-dist2 / (2 * 3.0**2)).astype(np.float32)
    fixed_shape = (50, 50, 50)
    fixed_affine = np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS, 1 mm
    fixed_affine[:3, 3] = [25.0, -25.0, -20.0]

    out = apply_transform(moving, moving_affine, fixed_shape, fixed_affine)

    pts = grid_points(fixed_shape, fixed_affine)
    centroid = np.tensordot(out, pts, axes=3) / out.sum()
    np.testing.assert_allclose(centroid, centre_ras, atol=0.1)
    # A wrong RAS/LPS flip would have put it at (+12, -7, 15).


def test_it_applies_the_transform_in_the_fixed_to_moving_direction() -> None:
    affine = grid_affine((41, 41, 41), (1.0, 1.0, 1.0))  # voxel 20 is the world origin
    moving = np.zeros((41, 41, 41), dtype=np.int16)
    moving[30, 20, 20] = 7  # world x = +10 mm
    shift_x = np.eye(4)
    shift_x[0, 3] = 4.0  # a fixed point p sees the moving image at p + 4 mm

    out = apply_transform(moving, affine, (41, 41, 41), affine, shift_x, interpolation="nearest")

    assert out.dtype == np.int16
    assert np.argwhere(out == 7).tolist() == [[26, 20, 20]]  # world x = +6 mm


def test_it_resamples_like_the_registration_when_given_its_transform(fixed_head) -> None:
    fixed, brain, _ = fixed_head
    motion = rigid((0.0, 0.0, 4.0), (2.0, 0.0, 0.0))
    moving, _ = render(FIXED_SHAPE, FIXED_AFFINE, "t1w", object_to_world=motion, seed=8)
    result = rigid_register(
        fixed, FIXED_AFFINE, moving, FIXED_AFFINE, fixed_mask=brain,
        shrink_factors=(4,), smoothing_sigmas_mm=(2.0,),
    )

    again = apply_transform(moving, FIXED_AFFINE, FIXED_SHAPE, FIXED_AFFINE, result.fixed_to_moving)

    np.testing.assert_allclose(again, result.resampled, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, m: (f[..., None], m), "fixed image must be 3D, got 4D"),
        (lambda f, m: (f, m[:, :, 0]), "moving image must be 3D, got 2D"),
        (lambda f, m: (f, np.where(m > 0.5, np.nan, m)), "moving image contains"),
        (lambda f, m: (np.zeros_like(f), m), "fixed image is constant"),
    ],
)
def test_it_rejects_unusable_images(fixed_head, change, message) -> None:
    fixed, _, _ = fixed_head
    f, m = change(fixed, fixed.copy())
    with pytest.raises(ReconInputError, match=message):
        rigid_register(f, FIXED_AFFINE, m, FIXED_AFFINE)


def test_it_rejects_a_mask_of_another_shape(fixed_head) -> None:
    fixed, brain, _ = fixed_head
    with pytest.raises(ReconInputError, match="fixed_mask has shape"):
        rigid_register(fixed, FIXED_AFFINE, fixed, FIXED_AFFINE, fixed_mask=brain[1:])


def test_it_rejects_a_sheared_affine(fixed_head) -> None:
    fixed, _, _ = fixed_head
    sheared = FIXED_AFFINE.copy()
    sheared[0, 1] = 0.5
    with pytest.raises(ReconInputError, match="moving affine has shear"):
        rigid_register(fixed, FIXED_AFFINE, fixed, sheared)


def test_it_rejects_images_that_do_not_overlap(fixed_head) -> None:
    fixed, _, _ = fixed_head
    far = FIXED_AFFINE.copy()
    far[:3, 3] += 1000.0
    with pytest.raises(ReconInputError, match="barely overlap"):
        rigid_register(fixed, FIXED_AFFINE, fixed, far)
