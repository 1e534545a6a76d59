"""The whole QSM reconstruction in one call: magnitude + phase in, susceptibility (ppm) out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recon.bgremove import pdf, vsharp
from recon.constants import GAMMA_HZ_PER_T
from recon.echofit import fit_echoes
from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine
from recon.mask import brain_mask, check_mask, check_voxel_size, csf_mask, erode_mask
from recon.phase import phase_to_radians
from recon.progress import monotonic, scaled

BACKGROUNDS = ("pdf", "vsharp")
#: Radius of the spherical mean value filter when ``smv=True`` (the MEDI toolbox's default).
SMV_RADIUS_MM = 5.0
#: Share of the progress bar per stage.
_STAGES = {"mask": (0.0, 0.03), "fit": (0.03, 0.15), "background": (0.15, 0.35), "inversion": (0.35, 1.0)}


@dataclass
class QSMResult:
    """Output of :func:`qsm`.

    Attributes
    ----------
    chi_ppm : (nx, ny, nz) float32
        Susceptibility in ppm, zero outside ``eroded_mask``. Its zero is the mean over the
        inversion's solve box, or the mean of ventricular CSF with ``csf_zero_reference``.
    mask : (nx, ny, nz) bool
        Brain mask (given, or from the magnitude).
    eroded_mask : (nx, ny, nz) bool
        Mask the local field and susceptibility are defined in (eroded by ``erosion_mm``, and by
        V-SHARP's smallest sphere / the SMV sphere when those are used).
    total_field : (nx, ny, nz) float32
        Unwrapped total field in rad at ``te_ref`` (zero outside ``mask``).
    local_field : (nx, ny, nz) float32
        Background-removed field in rad at ``te_ref`` (zero outside ``eroded_mask``).
    noise : (nx, ny, nz) float32
        Field noise standard deviation in rad at ``te_ref`` (relative units for one or two
        echoes, see :func:`recon.echofit.fit_echoes`).
    te_ref : float
        Time (s) the fields in rad refer to: the TE for one echo, the first echo spacing
        ``te[1] - te[0]`` for several (the MEDI toolbox's convention, so ``lam`` keeps its
        meaning).
    timings : dict[str, float]
        Seconds per stage (``mask``, ``fit``, ``background``, ``inversion``) and ``total``.
    fft_counts : dict[str, int]
        Real 3-D FFTs of the inversion (``inversion``).
    parameters : dict
        Every parameter used, including the B0 direction and the phase unit conversion applied.
    """

    chi_ppm: np.ndarray
    mask: np.ndarray
    eroded_mask: np.ndarray
    total_field: np.ndarray
    local_field: np.ndarray
    noise: np.ndarray
    te_ref: float
    timings: dict[str, float] = field(default_factory=dict)
    fft_counts: dict[str, int] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


def _validated_images(
    magnitude: np.ndarray, phase: np.ndarray, te: float | Sequence[float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], str]:
    mag = np.asarray(magnitude)
    ph = np.asarray(phase)
    if mag.ndim not in (3, 4):
        raise ReconInputError(f"magnitude must be 3-D or 4-D (echoes on axis 3), got shape {mag.shape}")
    if ph.shape != mag.shape:
        raise ReconInputError(f"phase shape {ph.shape} does not match magnitude shape {mag.shape}")
    if not np.issubdtype(mag.dtype, np.number) or np.iscomplexobj(mag):
        raise ReconInputError(f"magnitude must be real numbers, got dtype {mag.dtype}")
    if not np.all(np.isfinite(mag)):
        raise ReconInputError("magnitude contains NaN or infinite values")
    n_echo = 1 if mag.ndim == 3 else mag.shape[3]
    tes = np.atleast_1d(np.asarray(te, dtype=np.float64)) if te is not None else np.zeros(0)
    if tes.ndim != 1 or tes.size != n_echo:
        raise ReconInputError(f"{tes.size} echo time(s) given for {n_echo} echo(es): one TE per echo is needed")
    if not np.all(np.isfinite(tes)) or np.any(tes <= 0) or np.any(np.diff(tes) <= 0):
        raise ReconInputError(f"echo times must be positive and increasing, in s; got {tes.tolist()}")
    if np.any(tes > 1.0):
        raise ReconInputError(f"echo times look like ms, not s: {tes.tolist()}")
    rad, how = phase_to_radians(ph)
    return mag.astype(np.float32, copy=False), rad, tuple(float(t) for t in tes), how


def qsm(
    magnitude: np.ndarray,
    phase: np.ndarray,
    te: float | Sequence[float],
    b0: float,
    voxel_size: Sequence[float],
    *,
    affine: np.ndarray | None = None,
    b0_dir: Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    erosion_mm: float = 2.5,
    background: str = "pdf",
    solver: str = "admm",
    lam: float = 1000.0,
    edge_percentage: float = 0.9,
    csf_zero_reference: bool = False,
    smv: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> QSMResult:
    """Quantitative susceptibility map (ppm) from gradient-echo magnitude and phase.

    Steps: phase units to radians (:func:`recon.phase.phase_to_radians`); brain mask from the
    first echo's magnitude unless given (:func:`recon.mask.brain_mask`); Laplacian unwrapping and
    (for several echoes) the magnitude-weighted fit of phase against TE
    (:func:`recon.echofit.fit_echoes`); erosion of the mask by ``erosion_mm``
    (:func:`recon.mask.erode_mask`); background removal in the eroded mask (PDF or V-SHARP);
    MEDI dipole inversion (:func:`recon.inversion.medi`) of the local field in radians at
    ``te_ref``; conversion ``ppm = chi_rad / (2 pi gamma B0 te_ref) * 1e6``.

    Parameters
    ----------
    magnitude : (nx, ny, nz) or (nx, ny, nz, n_echo) array
        Magnitude, any scale.
    phase : array like ``magnitude``
        Phase in radians within [-pi, pi], or scanner integer phase (see
        :func:`recon.phase.phase_to_radians`).
    te : float or sequence of float
        Echo time(s) in s, one per echo, increasing.
    b0 : float
        Field strength in T.
    voxel_size : (3,) floats
        mm per array axis.
    affine : (4, 4) array, optional
        NIfTI affine; gives the B0 direction in voxel axes (B0 along world z).
    b0_dir : (3,) floats, optional
        B0 direction in voxel axes; overrides the affine. Default (0, 0, 1) without an affine.
    mask : (nx, ny, nz) bool, optional
        Brain mask; computed from the magnitude if omitted.
    erosion_mm : float
        Erosion of the mask before background removal and inversion, mm (>= 0).
    background : {"pdf", "vsharp"}
        Background field removal method.
    solver : {"admm", "toolbox"}
        MEDI solver.
    lam : float
        MEDI data weight (1000 as in the MEDI toolbox, for a field in radians at ``te_ref``).
    edge_percentage : float
        MEDI edge mask percentage.
    csf_zero_reference : bool
        MEDI+0: reference chi to ventricular CSF (found by :func:`recon.mask.csf_mask`).
    smv : bool
        MEDI's spherical mean value preconditioning with radius 5 mm.
    progress : callable(fraction, stage), optional
        Called with the overall fraction in [0, 1] and a stage description.

    Returns
    -------
    QSMResult

    Raises
    ------
    ReconInputError
        Mismatched shapes, TE count different from the echo count, phase out of range, NaNs,
        an empty (or fully eroded) mask, unknown method names, non-positive B0.

    References
    ----------
    Liu T, Liu J, de Rochefort L, et al. Morphology enabled dipole inversion (MEDI) from a
    single-angle acquisition: comparison with COSMOS in human brain imaging. Magn Reson Med
    2011;66:777-783.

    Liu T, Khalidov I, de Rochefort L, et al. A novel background field removal method for MRI
    using projection onto dipole fields (PDF). NMR Biomed 2011;24:1129-1136.

    Examples
    --------
    >>> from recon import make_phantom, qsm
    >>> ph = make_phantom((96, 96, 48), (1.2, 1.2, 2.0))
    >>> res = qsm(ph.magnitude, ph.phase, ph.te, ph.b0, ph.voxel_size, affine=ph.affine)  # doctest: +SKIP
    """
    from recon.inversion import medi

    t_start = time.perf_counter()
    report = monotonic(progress)
    vs = check_voxel_size(voxel_size)
    mag, rad, tes, phase_unit = _validated_images(magnitude, phase, te)
    if not (np.isfinite(b0) and b0 > 0):
        raise ReconInputError(f"b0 must be a positive field strength in T, got {b0!r}")
    if background not in BACKGROUNDS:
        raise ReconInputError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    if not (np.isfinite(erosion_mm) and erosion_mm >= 0):
        raise ReconInputError(f"erosion_mm must be >= 0, got {erosion_mm!r}")
    if b0_dir is not None:
        direction = tuple(float(x) for x in b0_dir)
        if len(direction) != 3 or not np.all(np.isfinite(direction)) or np.linalg.norm(direction) == 0:
            raise ReconInputError(f"b0_dir must be a finite non-zero 3-vector, got {b0_dir!r}")
        norm = float(np.linalg.norm(direction))
        direction = tuple(x / norm for x in direction)
        dir_source = "b0_dir"
    elif affine is not None:
        direction = b0_direction_from_affine(np.asarray(affine))
        dir_source = "affine"
    else:
        direction, dir_source = (0.0, 0.0, 1.0), "default"
    shape3 = mag.shape[:3]
    first_mag = mag if mag.ndim == 3 else mag[..., 0]
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    report(0.0, "mask: brain mask")
    if mask is None:
        brain = brain_mask(first_mag, vs)
        mask_source = "magnitude"
    else:
        brain = check_mask(mask, shape3)
        mask_source = "given"
    eroded = erode_mask(brain, vs, erosion_mm)
    if not eroded.any():
        raise ReconInputError(f"eroding the mask by {erosion_mm} mm leaves nothing")
    timings["mask"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fit = fit_echoes(rad, brain, vs, te=tes, magnitude=mag, progress=scaled(report, *_STAGES["fit"], prefix="field"))
    te_ref = tes[0] if len(tes) == 1 else tes[1] - tes[0]
    total = fit.frequency * np.float32(te_ref)
    noise = fit.noise * np.float32(te_ref)
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bg_progress = scaled(report, *_STAGES["background"], prefix="background")
    if background == "pdf":
        local = pdf(total, eroded, vs, b0_dir=direction, noise=noise, progress=bg_progress)
    else:
        local, eroded = vsharp(total, eroded, vs, progress=bg_progress)
    timings["background"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    csf = csf_mask(mag, eroded, vs, te=tes) if csf_zero_reference else None
    res = medi(
        local,
        eroded,
        vs,
        magnitude=first_mag,
        noise=np.where(eroded, noise, 1.0).astype(np.float32),
        b0_dir=direction,
        lam=lam,
        edge_percentage=edge_percentage,
        solver=solver,
        csf_mask=csf,
        smv_radius_mm=SMV_RADIUS_MM if smv else None,
        progress=scaled(report, *_STAGES["inversion"], prefix="inversion"),
    )
    timings["inversion"] = time.perf_counter() - t0
    used = np.asarray(res.mask, dtype=bool) & eroded
    chi_ppm = res.chi / np.float32(2 * np.pi * GAMMA_HZ_PER_T * b0 * te_ref) * np.float32(1e6)
    chi_ppm = chi_ppm.astype(np.float32)
    chi_ppm[~used] = 0.0
    local = local.astype(np.float32)
    local[~used] = 0.0
    timings["total"] = time.perf_counter() - t_start
    report(1.0, "inversion: done")
    return QSMResult(
        chi_ppm=chi_ppm,
        mask=brain,
        eroded_mask=used,
        total_field=total.astype(np.float32),
        local_field=local,
        noise=noise.astype(np.float32),
        te_ref=float(te_ref),
        timings=timings,
        fft_counts={"inversion": int(res.fft_count)},
        parameters={
            "te_s": list(tes),
            "te_ref_s": float(te_ref),
            "b0_t": float(b0),
            "voxel_size_mm": list(vs),
            "b0_dir": list(direction),
            "b0_dir_source": dir_source,
            "phase_unit": phase_unit,
            "mask": mask_source,
            "erosion_mm": float(erosion_mm),
            "background": background,
            "solver": solver,
            "lam": float(lam),
            "edge_percentage": float(edge_percentage),
            "csf_zero_reference": bool(csf_zero_reference),
            "smv": bool(smv),
            "smv_radius_mm": SMV_RADIUS_MM if smv else None,
            "medi_iterations": int(res.iterations),
            "medi_converged": bool(res.converged),
        },
    )
