"""Rigid (6-DOF) coregistration of a structural image to the T2* magnitude, by mutual information.

A T1 (WM-nulled or CSF-nulled MPRAGE) or FLAIR image is aligned to the GRE magnitude of the QSM
scan and resampled onto the GRE grid, so that tissue labels or lesion masks drawn on it can be used
in T2*/QSM space. The contrasts differ, so the similarity measure is Mattes mutual information
[1]_, optimised over a rotation and a translation (Euler3D) from coarse to fine resolution, with
the ITK v4 registration framework [2]_ through SimpleITK [3]_.

Conventions
-----------
Arrays are indexed as nibabel loads them, ``data[i, j, k]``, with a NIfTI voxel-to-world affine in
RAS+ millimetres. ITK works in LPS and stores arrays z-fastest; the conversion lives in
:func:`_to_sitk` / :func:`_from_sitk` and nowhere else. Transforms are reported as 4x4 matrices in
world (RAS, mm) coordinates mapping a point of the *fixed* image to the corresponding point of the
*moving* image (the "pull" direction used to resample the moving image onto the fixed grid).

Pure library code: no Django, no file I/O.

References
----------
.. [1] Mattes D, Haynor DR, Vesselle H, Lewellen TK, Eubank W. PET-CT image registration in the
   chest using free-form deformations. IEEE Trans Med Imaging. 2003;22(1):120-128.
   doi:10.1109/TMI.2003.809072
.. [2] Avants BB, Tustison NJ, Stauffer M, Song G, Wu B, Gee JC. The Insight ToolKit image
   registration framework. Front Neuroinform. 2014;8:44. doi:10.3389/fninf.2014.00044
.. [3] Yaniv Z, Lowekamp BC, Johnson HJ, Beare R. SimpleITK image-analysis notebooks: a
   collaborative environment for education and reproducible research. J Digit Imaging.
   2018;31(3):290-303. doi:10.1007/s10278-017-0037-8
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from recon.errors import ReconInputError
from recon.geometry import voxel_size_from_affine

#: ``progress(fraction in [0, 1], stage description)``; may raise to cancel the registration.
ProgressCallback = Callable[[float, str], None]

Interpolation = Literal["linear", "bspline", "nearest"]
Initialization = Literal["identity", "geometry", "moments"]

# RAS <-> LPS: negate the first two world axes (an involution, so the same matrix both ways).
_FLIP3 = np.diag([-1.0, -1.0, 1.0])
_FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])

# Largest tolerated deviation of the affine's direction cosines from orthonormal; scanner NIfTIs
# deviate by ~1e-6 from float32 rounding, ITK cannot represent genuine shear.
_SHEAR_TOL = 1e-3

_INTERPOLATORS: dict[str, int] = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "nearest": sitk.sitkNearestNeighbor,
}

# Fewer samples than this per level make the 2D joint histogram too sparse for a smooth MI.
_MIN_SAMPLES_PER_LEVEL = 20_000

_MIN_VOXELS_PER_AXIS = 4


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of :func:`rigid_register`.

    Attributes
    ----------
    resampled : (X, Y, Z) float32 array
        The moving image resampled onto the fixed grid (shape of ``fixed``, same affine). Voxels
        whose pre-image falls outside the moving field of view are 0.
    fixed_to_moving : (4, 4) float64 array
        World (RAS, mm) transform taking a point of the fixed image to the matching point of the
        moving image. Its inverse takes moving to fixed. To bring another image that shares the
        moving grid (e.g. a label map from the T1) into fixed space, pass it to
        :func:`apply_transform`.
    rotation_deg : (3,) tuple of float
        Rotation as angles (degrees) about the world x (R), y (A) and z (S) axes, composed as
        ``Rz @ Ry @ Rx`` (x first).
    rotation_angle_deg : float
        Total rotation angle (axis-angle magnitude), degrees: the one number for QC.
    translation_mm : (3,) tuple of float
        Displacement of the centre of the fixed image (or of the fixed mask) under
        ``fixed_to_moving``, RAS mm. Unlike the matrix's last column it does not depend on where
        the world origin is.
    metric : float
        Final Mattes mutual information at the finest level (negative; lower is better).
    iterations : int
        Optimiser iterations summed over all resolution levels.
    iterations_per_level : tuple of int
        Optimiser iterations at each level, coarse to fine.
    coverage : float
        Fraction of fixed voxels (within ``fixed_mask`` if given) whose pre-image lies inside the
        moving field of view. Below ~0.95 part of the fixed image has no moving data.
    stop_condition : str
        The optimiser's stop reason at the finest level, for the job log.
    """

    resampled: np.ndarray
    fixed_to_moving: np.ndarray
    rotation_deg: tuple[float, float, float]
    rotation_angle_deg: float
    translation_mm: tuple[float, float, float]
    metric: float
    iterations: int
    iterations_per_level: tuple[int, ...]
    coverage: float
    stop_condition: str


def rigid_register(
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    moving: np.ndarray,
    moving_affine: np.ndarray,
    *,
    fixed_mask: np.ndarray | None = None,
    initialization: Initialization = "identity",
    shrink_factors: Sequence[int] = (4, 2, 1),
    smoothing_sigmas_mm: Sequence[float] = (2.0, 1.0, 0.0),
    sampling_fraction: float = 0.1,
    histogram_bins: int = 32,
    max_iterations: int = 200,
    interpolation: Interpolation = "linear",
    seed: int = 0,
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> RegistrationResult:
    """Rigidly register ``moving`` to ``fixed`` by Mattes mutual information; resample onto fixed.

    Parameters
    ----------
    fixed : (X, Y, Z) array
        Reference image, typically the T2* (GRE) magnitude, any real dtype. Must be finite.
    fixed_affine : (4, 4) array
        NIfTI voxel-to-world affine of ``fixed`` (RAS, mm).
    moving : (X', Y', Z') array
        Image to align (T1 MPRAGE, FLAIR, ...); any grid, voxel size and orientation.
    moving_affine : (4, 4) array
        NIfTI voxel-to-world affine of ``moving`` (RAS, mm).
    fixed_mask : (X, Y, Z) bool array, optional
        Restricts the metric to these fixed voxels (e.g. a brain mask), which keeps neck, noise
        and GRE signal dropouts from driving the alignment.
    initialization : {"identity", "geometry", "moments"}
        Starting transform. ``"identity"`` trusts the scanner coordinates, which share one frame
        for all series of a session (right for our data: only head motion between series is left
        to find). ``"geometry"`` aligns the centres of the two fields of view, ``"moments"`` the
        intensity centres of mass; use one of these for images from different sessions or with
        unreliable headers. The rotation centre is always the fixed image (or mask) centre.
    shrink_factors : sequence of int
        Downsampling factor per resolution level, coarse to fine.
    smoothing_sigmas_mm : sequence of float
        Gaussian smoothing (mm) per level; same length as ``shrink_factors``.
    sampling_fraction : float in (0, 1]
        Fraction of fixed voxels sampled (randomly, with ``seed``) for the metric; raised per level
        so that at least 20 000 voxels are sampled.
    histogram_bins : int
        Joint-histogram bins per image for Mattes MI.
    max_iterations : int
        Optimiser iteration limit per level (regular step gradient descent).
    interpolation : {"linear", "bspline", "nearest"}
        Interpolator of the final resampling (the optimisation always uses linear).
    seed : int >= 0
        Seed of the metric's random sampling.
    threads : int >= 1
        ITK threads. With 1 (default) the same inputs and seed give the same result bit for bit.
        With more, ITK's threaded metric sums in varying order and results differ from run to
        run by ~1e-4 mm, which is harmless but not reproducible. For the duration of the call
        the process-wide ITK default thread count is set to this value (the Mattes metric ignores
        the per-filter setting), so do not run registrations concurrently in threads of one
        process (Celery's prefork workers are separate processes: fine).
    progress : callable, optional
        ``progress(fraction, stage)`` called as the optimisation advances (at most once per
        percent). If it raises, the registration stops and the exception propagates, which is
        how a job is cancelled.

    Returns
    -------
    RegistrationResult

    Raises
    ------
    ReconInputError
        On non-3D or non-finite images, constant images, bad affines (non-finite, degenerate or
        sheared), a mask of the wrong shape or empty, bad parameters, or images that do not
        overlap in world space.

    Notes
    -----
    Measured on synthetic heads (``tests/processing/test_registration.py``): residual error
    below 0.2 mm (max over the brain) and 0.2 degree for 3-8 degree / 2-6 mm misalignments,
    including anisotropic voxels and a moving image on another, oblique, flipped grid. See
    ``docs/processing.md`` for the numbers and times.

    Examples
    --------
    >>> res = rigid_register(t2s_mag, t2s_affine, t1, t1_affine, fixed_mask=brain)  # doctest: +SKIP
    >>> t1_on_t2s = res.resampled
    """
    fixed_arr = _check_volume(fixed, "fixed image")
    moving_arr = _check_volume(moving, "moving image")
    mask_arr = _check_mask(fixed_mask, fixed_arr.shape)
    levels = _check_levels(shrink_factors, smoothing_sigmas_mm)
    if not 0.0 < sampling_fraction <= 1.0:
        raise ReconInputError(f"sampling_fraction must be in (0, 1], got {sampling_fraction}")
    if histogram_bins < 4:
        raise ReconInputError(f"histogram_bins must be at least 4, got {histogram_bins}")
    if max_iterations < 1:
        raise ReconInputError(f"max_iterations must be at least 1, got {max_iterations}")
    if seed < 0:
        raise ReconInputError(f"seed must be >= 0, got {seed}")
    if threads < 1:
        raise ReconInputError(f"threads must be >= 1, got {threads}")
    if initialization not in ("identity", "geometry", "moments"):
        raise ReconInputError(
            f"initialization must be 'identity', 'geometry' or 'moments', got {initialization!r}"
        )
    _interpolator(interpolation)

    fixed_img = _to_sitk(fixed_arr, fixed_affine, "fixed")
    moving_img = _to_sitk(moving_arr, moving_affine, "moving")
    mask_img = None
    if mask_arr is not None:
        mask_img = _to_sitk(mask_arr.astype(np.uint8), fixed_affine, "fixed")
        mask_img = sitk.Cast(mask_img, sitk.sitkUInt8)
    for factor in levels[0]:
        if min(fixed_arr.shape) // factor < 2 or min(moving_arr.shape) // factor < 2:
            raise ReconInputError(
                f"shrink factor {factor} leaves fewer than 2 voxels along an axis of images of "
                f"shape {fixed_arr.shape} / {moving_arr.shape}; use smaller shrink_factors"
            )

    center_lps = _FLIP3 @ _centre_ras(fixed_arr.shape, fixed_affine, mask_arr)
    transform = sitk.Euler3DTransform()
    transform.SetCenter(center_lps.tolist())
    if initialization != "identity":
        init = sitk.CenteredTransformInitializerFilter()
        init.SetNumberOfThreads(threads)
        if initialization == "geometry":
            init.GeometryOn()
        else:
            init.MomentsOn()
        start = sitk.Euler3DTransform(init.Execute(fixed_img, moving_img, sitk.Euler3DTransform()))
        # Keep the translation found, expressed about our rotation centre (rotation is identity).
        shift = np.asarray(start.GetTranslation())
        transform.SetTranslation(shift.tolist())

    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    n_fixed = fixed_arr.size if mask_arr is None else int(mask_arr.sum())
    percentages = [
        min(1.0, max(sampling_fraction, _MIN_SAMPLES_PER_LEVEL * f**3 / n_fixed)) for f in levels[0]
    ]
    # SimpleITK reads seed 0 as "seed from the wall clock"; shift so every seed is reproducible.
    reg.SetMetricSamplingPercentagePerLevel(percentages, seed + 1)
    if mask_img is not None:
        reg.SetMetricFixedMask(mask_img)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-3,
        numberOfIterations=max_iterations,
        # Slow step shrinking: with 0.5-0.6 the fine level stopped ~0.3 mm short of the optimum.
        relaxationFactor=0.8,
        gradientMagnitudeTolerance=1e-8,
    )
    # Unit step = 1 mm of motion of the fixed image's corners, so rotations and shifts are balanced.
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(levels[0]))
    reg.SetSmoothingSigmasPerLevel(list(levels[1]))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(transform, inPlace=True)

    tracker = _ProgressTracker(reg, len(levels[0]), max_iterations, progress)
    reg.AddCommand(sitk.sitkIterationEvent, tracker.on_iteration)
    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, tracker.on_level)
    tracker.report(0.0, "starting registration")
    tracker.raise_if_cancelled()
    try:
        with _global_itk_threads(threads):
            reg.Execute(fixed_img, moving_img)
    except RuntimeError as exc:
        if tracker.error is not None:
            raise tracker.error from None
        if "outside" in str(exc) or "too many samples" in str(exc).lower():
            raise ReconInputError(
                "registration failed: the fixed and moving images barely overlap in world "
                "space; check that both come from the same session or use "
                "initialization='moments'"
            ) from exc
        raise
    tracker.raise_if_cancelled()
    tracker.levels_done()

    fixed_to_moving = _euler_to_ras_matrix(transform)
    tracker.report(0.95, "resampling onto the fixed grid")
    tracker.raise_if_cancelled()
    resampled = _resample(moving_img, fixed_img, transform, interpolation, threads)
    coverage = _coverage(moving_img, fixed_img, transform, mask_arr, threads)
    tracker.report(1.0, "done")
    tracker.raise_if_cancelled()

    centre_ras = _FLIP3 @ center_lps
    moved_centre = fixed_to_moving[:3, :3] @ centre_ras + fixed_to_moving[:3, 3]
    shift_mm = moved_centre - centre_ras
    return RegistrationResult(
        resampled=np.asarray(_from_sitk(resampled), dtype=np.float32),
        fixed_to_moving=fixed_to_moving,
        rotation_deg=euler_xyz_deg(fixed_to_moving[:3, :3]),
        rotation_angle_deg=rotation_angle_deg(fixed_to_moving[:3, :3]),
        translation_mm=(float(shift_mm[0]), float(shift_mm[1]), float(shift_mm[2])),
        metric=float(reg.GetMetricValue()),
        iterations=int(sum(tracker.iterations)),
        iterations_per_level=tuple(tracker.iterations),
        coverage=coverage,
        stop_condition=reg.GetOptimizerStopConditionDescription(),
    )


def apply_transform(
    moving: np.ndarray,
    moving_affine: np.ndarray,
    fixed_shape: Sequence[int],
    fixed_affine: np.ndarray,
    fixed_to_moving: np.ndarray | None = None,
    *,
    interpolation: Interpolation = "linear",
    threads: int = 2,
) -> np.ndarray:
    """Resample ``moving`` onto a fixed grid through a world transform.

    Use it to carry anything that lives on the moving grid (a FreeSurfer ``aseg`` computed from
    the T1, a lesion mask drawn on FLAIR) into T2* space with the transform found by
    :func:`rigid_register`.

    Parameters
    ----------
    moving : (X', Y', Z') array
        Image or label map on the moving grid. Must be finite.
    moving_affine : (4, 4) array
        Its voxel-to-world affine (RAS, mm).
    fixed_shape : (X, Y, Z) ints
        Shape of the target grid.
    fixed_affine : (4, 4) array
        Affine of the target grid (RAS, mm).
    fixed_to_moving : (4, 4) array, optional
        World transform from fixed to moving points (``RegistrationResult.fixed_to_moving``);
        identity (pure resampling in scanner space) when omitted. Any affine is accepted.
    interpolation : {"linear", "bspline", "nearest"}
        Use ``"nearest"`` for label maps and masks.

    Returns
    -------
    (X, Y, Z) array
        float32 for linear/bspline; for nearest the input dtype (labels stay labels). Outside
        the moving field of view: 0.
    """
    moving_arr = _check_volume(moving, "moving image", allow_constant=True)
    shape = tuple(int(s) for s in fixed_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ReconInputError(f"fixed_shape must be three positive ints, got {fixed_shape!r}")
    matrix = np.eye(4) if fixed_to_moving is None else np.asarray(fixed_to_moving, np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ReconInputError("fixed_to_moving must be a finite 4x4 matrix")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
        raise ReconInputError("fixed_to_moving is singular")
    if threads < 1:
        raise ReconInputError(f"threads must be >= 1, got {threads}")
    _interpolator(interpolation)

    lps = _FLIP4 @ matrix @ _FLIP4
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(lps[:3, :3].ravel().tolist())
    transform.SetTranslation(lps[:3, 3].tolist())

    if interpolation == "nearest":
        # Keep label values exact: resample an integer (or original float) image, no float32 cast.
        src = moving_arr if moving_arr.dtype != np.bool_ else moving_arr.astype(np.uint8)
        moving_img = _to_sitk(src, moving_affine, "moving", cast=False)
    else:
        moving_img = _to_sitk(moving_arr, moving_affine, "moving")
    reference = _reference_image(shape, fixed_affine)
    out = _from_sitk(_resample(moving_img, reference, transform, interpolation, threads))
    if interpolation == "nearest":
        return out.astype(moving_arr.dtype, copy=False)
    return out.astype(np.float32, copy=False)


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Rotation angle (degrees) of a 3x3 rotation matrix: ``arccos((trace - 1) / 2)``."""
    r = np.asarray(rotation, dtype=np.float64)
    c = (np.trace(r) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def euler_xyz_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """Angles (degrees) about x, y, z of a rotation ``R = Rz @ Ry @ Rx`` (|y angle| < 90)."""
    r = np.asarray(rotation, dtype=np.float64)
    ry = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
    rx = np.arctan2(r[2, 1], r[2, 2])
    rz = np.arctan2(r[1, 0], r[0, 0])
    return (float(np.degrees(rx)), float(np.degrees(ry)), float(np.degrees(rz)))


# --------------------------------------------------------------------------------------------
# Validation


def _check_volume(x: np.ndarray, what: str, *, allow_constant: bool = False) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise ReconInputError(f"{what} must be 3D, got {arr.ndim}D with shape {arr.shape}")
    if min(arr.shape) < _MIN_VOXELS_PER_AXIS and not allow_constant:
        raise ReconInputError(
            f"{what} has shape {arr.shape}; need at least {_MIN_VOXELS_PER_AXIS} voxels per axis"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise ReconInputError(f"{what} must be real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ReconInputError(
            f"{what} contains {n_bad} NaN or infinite voxels; replace them (e.g. by 0) first"
        )
    if not allow_constant and float(arr.min()) == float(arr.max()):
        raise ReconInputError(f"{what} is constant ({float(arr.min()):g}); nothing to align")
    return arr


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise ReconInputError(f"fixed_mask has shape {m.shape}, the fixed image has {shape}")
    m = m.astype(bool)
    if not m.any():
        raise ReconInputError("fixed_mask is empty")
    return m


def _check_levels(
    shrink: Sequence[int], sigmas: Sequence[float]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    s = tuple(int(v) for v in shrink)
    g = tuple(float(v) for v in sigmas)
    if not s or len(s) != len(g):
        raise ReconInputError(
            f"shrink_factors {tuple(shrink)} and smoothing_sigmas_mm {tuple(sigmas)} must be "
            "non-empty and of the same length"
        )
    if min(s) < 1 or min(g) < 0:
        raise ReconInputError("shrink factors must be >= 1 and smoothing sigmas >= 0")
    return s, g


def _interpolator(name: str) -> int:
    try:
        return _INTERPOLATORS[name]
    except KeyError:
        raise ReconInputError(
            f"interpolation must be one of {sorted(_INTERPOLATORS)}, got {name!r}"
        ) from None


# --------------------------------------------------------------------------------------------
# nibabel (RAS, i-fastest index order) <-> SimpleITK (LPS, x-fastest memory order)


def _direction_and_spacing(affine: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(affine, dtype=np.float64)
    try:
        spacing = np.asarray(voxel_size_from_affine(a))
    except ReconInputError as exc:
        raise ReconInputError(f"{what} affine: {exc}") from None
    direction = a[:3, :3] / spacing
    deviation = float(np.abs(direction.T @ direction - np.eye(3)).max())
    if deviation > _SHEAR_TOL:
        raise ReconInputError(
            f"{what} affine has shear (direction cosines off orthonormal by {deviation:.2g}); "
            "rigid registration needs an affine made of rotation, flips and voxel sizes"
        )
    # Remove float32 rounding so ITK's own orthonormality check never trips.
    u, _, vt = np.linalg.svd(direction)
    return u @ vt, spacing


def _to_sitk(data: np.ndarray, affine: np.ndarray, what: str, *, cast: bool = True) -> sitk.Image:
    """``data[i, j, k]`` with RAS affine -> sitk.Image whose index (i, j, k) is that voxel."""
    direction, spacing = _direction_and_spacing(affine, what)
    values = data.astype(np.float32, copy=False) if cast else data
    # GetImageFromArray reads a C-ordered array as [z, y, x]; transposing makes ITK index (i, j, k).
    img = sitk.GetImageFromArray(np.ascontiguousarray(values.transpose(2, 1, 0)))
    img.SetSpacing(spacing.tolist())
    img.SetDirection((_FLIP3 @ direction).ravel().tolist())
    img.SetOrigin((_FLIP3 @ np.asarray(affine, np.float64)[:3, 3]).tolist())
    return img


def _from_sitk(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img).transpose(2, 1, 0)


def _reference_image(shape: tuple[int, ...], affine: np.ndarray) -> sitk.Image:
    """An empty image carrying only the target grid geometry."""
    direction, spacing = _direction_and_spacing(affine, "fixed")
    img = sitk.Image([int(s) for s in shape], sitk.sitkUInt8)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((_FLIP3 @ direction).ravel().tolist())
    img.SetOrigin((_FLIP3 @ np.asarray(affine, np.float64)[:3, 3]).tolist())
    return img


def _centre_ras(
    shape: tuple[int, ...], affine: np.ndarray, mask: np.ndarray | None
) -> np.ndarray:
    if mask is None:
        ijk = (np.asarray(shape, np.float64) - 1.0) / 2.0
    else:
        ijk = np.array([np.mean(ax) for ax in np.nonzero(mask)], dtype=np.float64)
    a = np.asarray(affine, np.float64)
    return a[:3, :3] @ ijk + a[:3, 3]


def _euler_to_ras_matrix(transform: sitk.Euler3DTransform) -> np.ndarray:
    """ITK maps p -> A (p - c) + c + t in LPS; return the same map as a 4x4 RAS matrix."""
    a = np.asarray(transform.GetMatrix(), np.float64).reshape(3, 3)
    c = np.asarray(transform.GetCenter(), np.float64)
    t = np.asarray(transform.GetTranslation(), np.float64)
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = c + t - a @ c
    return _FLIP4 @ lps @ _FLIP4


def _resample(
    moving_img: sitk.Image,
    reference: sitk.Image,
    transform: sitk.Transform,
    interpolation: str,
    threads: int,
) -> sitk.Image:
    f = sitk.ResampleImageFilter()
    f.SetNumberOfThreads(threads)
    f.SetReferenceImage(reference)
    f.SetTransform(transform)
    f.SetInterpolator(_interpolator(interpolation))
    f.SetDefaultPixelValue(0)
    f.SetOutputPixelType(
        moving_img.GetPixelID() if interpolation == "nearest" else sitk.sitkFloat32
    )
    return f.Execute(moving_img)


def _coverage(
    moving_img: sitk.Image,
    fixed_img: sitk.Image,
    transform: sitk.Transform,
    mask: np.ndarray | None,
    threads: int,
) -> float:
    ones = sitk.Image(moving_img.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving_img)
    inside = _from_sitk(_resample(ones, fixed_img, transform, "nearest", threads)) > 0
    if mask is not None:
        return float(inside[mask].mean())
    return float(inside.mean())


@contextmanager
def _global_itk_threads(threads: int) -> Iterator[None]:
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


class _ProgressTracker:
    """Turns ITK iteration events into throttled ``progress(fraction, stage)`` calls."""

    def __init__(
        self,
        reg: sitk.ImageRegistrationMethod,
        n_levels: int,
        max_iterations: int,
        callback: ProgressCallback | None,
    ) -> None:
        self._reg = reg
        self._n_levels = n_levels
        self._max_iterations = max_iterations
        self._callback = callback
        self._last_percent = -1
        self._last_stage = ""
        self.iterations: list[int] = []
        self.error: BaseException | None = None

    def on_level(self) -> None:
        self.iterations.append(0)

    def on_iteration(self) -> None:
        if not self.iterations:
            self.iterations.append(0)
        self.iterations[-1] += 1
        level = len(self.iterations) - 1
        within = min(self.iterations[-1] / self._max_iterations, 1.0)
        fraction = 0.02 + 0.9 * (level + within) / self._n_levels
        self.report(fraction, f"registration level {level + 1}/{self._n_levels}")

    def levels_done(self) -> None:
        self.iterations += [0] * (self._n_levels - len(self.iterations))

    def raise_if_cancelled(self) -> None:
        if self.error is not None:
            raise self.error

    def report(self, fraction: float, stage: str) -> None:
        if self._callback is None or self.error is not None:
            return
        percent = math.floor(100 * fraction)
        if percent == self._last_percent and stage == self._last_stage:
            return
        self._last_percent, self._last_stage = percent, stage
        try:
            self._callback(min(max(fraction, 0.0), 1.0), stage)
        except BaseException as exc:  # noqa: BLE001 - re-raised after ITK unwinds
            # An exception cannot cross ITK's C++ frames; remember it, stop, re-raise in Python.
            self.error = exc
            self._reg.Abort()
