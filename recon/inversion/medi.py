"""Morphology enabled dipole inversion (MEDI): local field (radians) to susceptibility.

:func:`medi` minimises the objective of the Cornell MEDI toolbox (``MEDI_L1.m``),

    E(chi) = lam * || W (exp(i D chi) - exp(i f)) ||_2^2 + || M_edge grad chi ||_1
             [+ lambda_csf / 2 * || M_csf (chi - mean_csf chi) ||_2^2]          (MEDI+0)

with the field f and chi in radians (the phase accrued at the echo time; lam = 1000 assumes that
unit), W the data weight (magnitude, or 1/noise, normalised to mean 1 in the mask), M_edge the
morphology prior of :func:`recon.inversion.edges.edge_mask` and D the dipole convolution
(optionally SMV-filtered). Two solvers:

- ``solver="admm"`` (default): ADMM with closed-form FFT steps, :mod:`recon.inversion.admm`, on the
  mask's bounding box plus a margin (:func:`recon.fft.solve_box`). It stops within ~2 % of the
  minimum of E (on the phantom; see docs/medi.md). Use it unless published numbers must be matched.
- ``solver="toolbox"``: the toolbox's Gauss-Newton / conjugate gradient scheme with its stopping
  rules, :mod:`recon.inversion.toolbox`, on the image's own matrix like ``MEDI_L1.m``. Use it to
  reproduce numbers published with the MEDI toolbox: its stopping rules end it short of the
  minimiser (on the phantom ~10 % above the minimum of E on its grid, NRMSE 0.2-0.3 from the
  minimiser), so its map is the toolbox's, not E's minimiser. Its periodic dipole convolution and
  the free susceptibility outside the mask make that early-stopped result depend on the grid.

Either way the susceptibility has one free constant: it is zero-mean over the solve grid before
masking, or referenced to the mean over ``csf_mask`` when that is given (MEDI+0).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recon.dipole import dipole_kernel
from recon.errors import ReconInputError
from recon.fft import RealFFT, SolveBox, solve_box
from recon.inversion.admm import solve_admm
from recon.inversion.edges import edge_mask as _edge_mask
from recon.inversion.problem import MEDIProblem
from recon.inversion.toolbox import solve_gauss_newton
from recon.kernels import sphere_kernel

SOLVERS = ("admm", "toolbox")


@dataclass
class MEDIResult:
    """Output of :func:`medi`.

    Attributes
    ----------
    chi : (nx, ny, nz) float32
        Susceptibility in the unit of the input field (radians); zero outside the (SMV-eroded)
        mask. ppm = chi / (2 pi gamma b0 te) * 1e6.
    iterations : int
        Outer iterations of the solver (ADMM iterations, or Gauss-Newton iterations).
    fft_count : int
        Real 3-D FFTs computed (forward and inverse), all on the solve grid.
    timings : dict
        Seconds per stage: ``setup``, ``edges``, ``solve``, ``finish``, ``total``.
    solver : str
        ``"admm"`` or ``"toolbox"``.
    converged : bool
        Whether the solver's stopping rule was met before its iteration cap.
    edge_mask : (3, nx, ny, nz) bool
        Gradient components treated as edges (not penalised).
    mask : (nx, ny, nz) bool
        The mask actually used (eroded when SMV is on).
    inner_iterations : int
        CG iterations summed over Gauss-Newton steps (toolbox solver), else 0.
    solve_shape : tuple
        Grid the solver ran on: the image's (toolbox default) or the mask's bounding box plus
        the margin, with fast FFT lengths.
    cost : dict
        Objective terms at the solution on the solver's own grid (``data``, ``reg``, ``csf``,
        ``total``); :func:`medi_objective` scores any map on a chosen grid.
    history : list of dict
        Per-iteration diagnostics of the solver.
    solution : (nx, ny, nz) float32 or None
        With ``return_solution=True``: the solver's whole x in radians, *not* masked (the
        susceptibility outside the mask that the data term sees through D), zero past the solve
        grid; what :func:`medi_objective` needs to score the solver's objective.
    """

    chi: np.ndarray
    iterations: int
    fft_count: int
    timings: dict[str, float]
    solver: str
    converged: bool
    edge_mask: np.ndarray
    mask: np.ndarray
    inner_iterations: int = 0
    solve_shape: tuple[int, int, int] = (0, 0, 0)
    cost: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    solution: np.ndarray | None = None


def _check_image(name: str, a: np.ndarray | None, shape: tuple[int, ...], mask: np.ndarray) -> np.ndarray | None:
    if a is None:
        return None
    arr = np.asarray(a)
    if arr.shape != shape:
        raise ReconInputError(f"{name} has shape {arr.shape}, expected {shape} like the field")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ReconInputError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr[mask])):
        raise ReconInputError(f"{name} contains NaN or infinite values inside the mask")
    return arr



@dataclass
class _Inputs:
    """Validated inputs of :func:`medi` on the image grid."""

    field: np.ndarray
    mask: np.ndarray
    voxel_size: tuple[float, float, float]
    magnitude: np.ndarray | None
    noise: np.ndarray | None
    csf: np.ndarray | None

    @classmethod
    def check(
        cls,
        field_rad: np.ndarray,
        mask: np.ndarray,
        voxel_size: Sequence[float],
        *,
        magnitude: np.ndarray | None,
        noise: np.ndarray | None,
        csf_mask: np.ndarray | None,
        lam: float,
        lambda_csf: float,
        smv_radius_mm: float | None,
    ) -> _Inputs:
        f_in = np.asarray(field_rad)
        if f_in.ndim != 3:
            raise ReconInputError(f"field must be a 3-D array, got shape {f_in.shape}")
        shape = f_in.shape
        if not np.issubdtype(f_in.dtype, np.number) or np.iscomplexobj(f_in):
            raise ReconInputError(f"field must be real numbers in radians, got dtype {f_in.dtype}")
        m_in = np.asarray(mask)
        if m_in.shape != shape:
            raise ReconInputError(f"mask has shape {m_in.shape}, expected {shape} like the field")
        m_in = m_in.astype(bool)
        if not m_in.any():
            raise ReconInputError("mask is empty")
        if not np.all(np.isfinite(f_in[m_in])):
            raise ReconInputError("field contains NaN or infinite values inside the mask")
        vs = np.asarray(voxel_size, dtype=np.float64)
        if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
            raise ReconInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}")
        vsize = (float(vs[0]), float(vs[1]), float(vs[2]))
        mag_in = _check_image("magnitude", magnitude, shape, m_in)
        noise_in = _check_image("noise", noise, shape, m_in)
        if noise_in is not None and np.any(noise_in[m_in] <= 0):
            raise ReconInputError("noise must be positive inside the mask")
        csf_in = None
        if csf_mask is not None:
            csf_in = np.asarray(csf_mask)
            if csf_in.shape != shape:
                raise ReconInputError(f"csf_mask has shape {csf_in.shape}, expected {shape}")
            csf_in = csf_in.astype(bool) & m_in
            if not csf_in.any():
                raise ReconInputError("csf_mask has no voxel inside the mask")
        if not (np.isfinite(lam) and lam > 0):
            raise ReconInputError(f"lam must be positive, got {lam!r}")
        if csf_in is not None and not (np.isfinite(lambda_csf) and lambda_csf >= 0):
            raise ReconInputError(f"lambda_csf must be non-negative, got {lambda_csf!r}")
        if smv_radius_mm is not None and not (np.isfinite(smv_radius_mm) and smv_radius_mm > 0):
            raise ReconInputError(f"smv_radius_mm must be positive, got {smv_radius_mm!r}")
        return cls(f_in, m_in, vsize, mag_in, noise_in, csf_in)


def _check_margin(margin: Any) -> float | None:
    if margin is None:
        return None
    if not isinstance(margin, (int, float)) or not (np.isfinite(margin) and margin >= 0):
        raise ReconInputError(f"margin_mm must be a non-negative number of mm or None, got {margin!r}")
    return float(margin)


def _build_problem(
    inputs: _Inputs,
    *,
    b0_dir: Sequence[float],
    lam: float,
    edge_percentage: float,
    lambda_csf: float,
    smv_radius_mm: float | None,
    margin_mm: float | None,
    timings: dict[str, float],
) -> tuple[MEDIProblem, SolveBox, np.ndarray]:
    """The MEDI objective on the solve grid (the image's, or the mask's box plus ``margin_mm``)."""
    shape, vsize, m_in, f_in = inputs.field.shape, inputs.voxel_size, inputs.mask, inputs.field
    mag_in, noise_in, csf_in = inputs.magnitude, inputs.noise, inputs.csf
    margin = margin_mm
    if smv_radius_mm is not None and margin is not None:
        margin = max(margin, float(smv_radius_mm) + 2.0 * max(vsize))
    # ---------------------------------------------------------------- setup on the solve box
    t0 = time.perf_counter()
    box = SolveBox.whole(shape) if margin is None else solve_box(m_in, vsize, margin_mm=margin)
    fft = RealFFT(box.shape)
    msk = box.crop(m_in, dtype=bool)
    f = box.crop(f_in)
    kernel = dipole_kernel(box.shape, vsize, b0_dir)
    # Field noise (toolbox N_std): given, or ~ 1 / magnitude.
    if noise_in is not None:
        sigma = box.crop(noise_in)
    elif mag_in is not None:
        mag_box = box.crop(mag_in)
        with np.errstate(divide="ignore"):
            sigma = np.where(mag_box > 0, 1.0 / np.maximum(mag_box, np.float32(1e-30)), np.inf).astype(np.float32)
    else:
        sigma = None
    if smv_radius_mm is not None:
        s_k = sphere_kernel(box.shape, vsize, float(smv_radius_mm))
        msk = fft.convolve(msk.astype(np.float32), s_k) > 0.999
        if not msk.any():
            raise ReconInputError(f"SMV radius {smv_radius_mm} mm erodes the whole mask")
        kernel = kernel * (1.0 - s_k)
        f = f - fft.convolve(f, s_k)
        if sigma is not None:
            sig2 = np.where(np.isfinite(sigma), sigma, 0.0).astype(np.float32) ** 2
            sigma = np.sqrt(np.maximum(fft.convolve(sig2, s_k), 0.0) + sig2).astype(np.float32)
    f[~msk] = 0.0
    # Data weight: mask / noise, normalised to mean 1 in the mask (toolbox dataterm_mask).
    if sigma is None:
        w = msk.astype(np.float32)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(msk & np.isfinite(sigma) & (sigma > 0), 1.0 / sigma, 0.0).astype(np.float32)
        mean_w = float(w[msk].mean())
        if not mean_w > 0:
            raise ReconInputError("data weight is zero everywhere in the mask (magnitude all zero?)")
        w /= np.float32(mean_w)
    weight2 = np.square(w, out=w)
    timings["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mag_for_edges = box.crop(mag_in) if mag_in is not None else msk.astype(np.float32)
    edges = _edge_mask(mag_for_edges, msk, vsize, percentage=edge_percentage)
    penalty = (~edges).astype(np.float32)
    # The Neumann gradient vanishes on the last plane: weight 0 there makes periodic == Neumann.
    penalty[0, -1] = 0.0
    penalty[1, :, -1] = 0.0
    penalty[2, :, :, -1] = 0.0
    timings["edges"] = time.perf_counter() - t0

    problem = MEDIProblem(
        fft=fft,
        voxel_size=vsize,
        kernel=kernel,
        field=f,
        weight2=weight2,
        penalty=penalty,
        mask=msk,
        lam=float(lam),
        csf=box.crop(csf_in, dtype=bool) & msk if csf_in is not None else None,
        lam_csf=float(lambda_csf) if csf_in is not None else 0.0,
    )
    if problem.csf is not None and not problem.csf.any():
        raise ReconInputError("csf_mask has no voxel inside the (SMV-eroded) mask")
    return problem, box, edges


def medi(
    field_rad: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    magnitude: np.ndarray | None = None,
    noise: np.ndarray | None = None,
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    lam: float = 1000.0,
    edge_percentage: float = 0.9,
    solver: str = "admm",
    csf_mask: np.ndarray | None = None,
    lambda_csf: float = 100.0,
    smv_radius_mm: float | None = None,
    progress: Callable[[float, str], None] | None = None,
    return_solution: bool = False,
    **solver_kwargs: Any,
) -> MEDIResult:
    """MEDI dipole inversion of a local field in radians.

    Parameters
    ----------
    field_rad : (nx, ny, nz) float array
        Local (background-removed) field in radians at the echo time: 2 pi gamma b0 te * ppm.
        Only values inside ``mask`` are used; they must be finite.
    mask : (nx, ny, nz) bool array
        Brain mask (the region where the field is trusted). Must not be empty.
    voxel_size : (3,) floats
        Voxel size in mm along each array axis (anisotropic sizes are kept per axis).
    magnitude : (nx, ny, nz) float array, optional
        Magnitude image: gives the edge mask and, unless ``noise`` is given, the data weight
        (``W ~ magnitude``, i.e. ~ 1 / field noise). Without it there are no anatomical edges
        (only the mask boundary) and W is uniform.
    noise : (nx, ny, nz) float array, optional
        Field noise standard deviation (any unit, > 0 in the mask); ``W ~ 1 / noise``
        (the toolbox's ``N_std``). Takes precedence over the magnitude for the weight.
    b0_dir : (3,) floats
        B0 direction in voxel (array-axis) coordinates.
    lam : float
        Weight of the data term (toolbox default 1000, for a field in radians).
    edge_percentage : float
        The toolbox's gradient-mask ``percentage``: edge components / mask voxels. 0.9 marks about
        30 % of gradient components as edges.
    solver : {"admm", "toolbox"}
        ``"admm"`` (fast, default; ends near the minimiser of E) or ``"toolbox"`` (the toolbox's
        Gauss-Newton/CG with its stopping rules; to reproduce published MEDI toolbox numbers).
    csf_mask : (nx, ny, nz) bool array, optional
        Ventricular CSF for the MEDI+0 zero reference; chi is then referenced to its mean.
    lambda_csf : float
        MEDI+0 weight (toolbox default 100); used only with ``csf_mask``.
    smv_radius_mm : float, optional
        Radius of the toolbox's optional SMV preconditioning (off by default): erodes the mask by
        the sphere, filters field and kernel with ``1 - SMV``.
    progress : callable(fraction, stage) or None
        Called with fractions in [0, 1] and a short description.
    return_solution : bool
        Also return the solver's unmasked x as ``MEDIResult.solution`` (for
        :func:`medi_objective`).
    **solver_kwargs
        Passed to the solver: ``margin_mm`` for both: solve on the mask's bounding box grown by
        this many mm (ADMM default 6 mm) instead of the image's own grid (toolbox default, as
        ``MEDI_L1.m``; ``margin_mm=None`` asks for it with either solver);
        toolbox: ``max_iter``, ``tol_update``, ``cg_tol``, ``cg_max_iter``, ``eps``;
        admm: ``max_iter``, ``tol``, ``mu_grad``, ``mu_data``, ``newton_steps``, ``min_iter``.

    Returns
    -------
    MEDIResult
        ``chi`` float32 in radians (same unit as ``field_rad``), zero outside the mask.

    Raises
    ------
    ReconInputError
        On mismatched shapes, NaN/inf in the mask, an empty mask, bad voxel size, direction,
        weights or solver name.

    References
    ----------
    Liu T, Liu J, de Rochefort L, Spincemaille P, Khalidov I, Ledoux JR, Wang Y. Morphology enabled
    dipole inversion (MEDI) from a single-angle acquisition: comparison with COSMOS in human brain
    imaging. Magn Reson Med 2011;66:777-783.

    Liu J, Liu T, de Rochefort L, Ledoux J, Khalidov I, Chen W, Tsiouris AJ, Wisnieff C,
    Spincemaille P, Prince MR, Wang Y. Morphology enabled dipole inversion for quantitative
    susceptibility mapping using structural consistency between the magnitude image and the
    susceptibility map. NeuroImage 2012;59:2560-2568.

    Liu Z, Spincemaille P, Yao Y, Zhang Y, Wang Y. MEDI+0: morphology enabled dipole inversion
    with automatic uniform cerebrospinal fluid zero reference for quantitative susceptibility
    mapping. Magn Reson Med 2018;79:2795-2803.

    Milovic C, Bilgic B, Zhao B, Acosta-Cabronero J, Tejos C. Fast nonlinear susceptibility
    inversion with variational regularization. Magn Reson Med 2018;80:814-821 (ADMM solver).

    Examples
    --------
    >>> res = medi(field_rad, mask, (0.47, 0.47, 1.0), magnitude=mag)  # doctest: +SKIP
    >>> chi_ppm = res.chi / (2 * np.pi * GAMMA_HZ_PER_T * b0 * te) * 1e6  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    done = [0.0]  # progress never goes backwards, whatever a solver's estimate does

    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            done[0] = max(done[0], float(min(max(fraction, 0.0), 1.0)))
            progress(done[0], stage)

    # ---------------------------------------------------------------- validation
    if solver not in SOLVERS:
        raise ReconInputError(f"solver must be one of {SOLVERS}, got {solver!r}")
    inputs = _Inputs.check(
        field_rad, mask, voxel_size, magnitude=magnitude, noise=noise, csf_mask=csf_mask,
        lam=lam, lambda_csf=lambda_csf, smv_radius_mm=smv_radius_mm,
    )
    kwargs = dict(solver_kwargs)
    margin = _check_margin(kwargs.pop("margin_mm", None if solver == "toolbox" else 6.0))
    solve = solve_gauss_newton if solver == "toolbox" else solve_admm
    known = set(inspect.signature(solve).parameters) - {"p", "progress"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ReconInputError(f"unknown option(s) {unknown} for solver={solver!r}; known: {sorted(known)}")

    # ---------------------------------------------------------------- setup on the solve box
    report(0.0, "MEDI setup")
    problem, box, edges = _build_problem(
        inputs, b0_dir=b0_dir, lam=lam, edge_percentage=edge_percentage, lambda_csf=lambda_csf,
        smv_radius_mm=smv_radius_mm, margin_mm=margin, timings=timings,
    )
    msk = problem.mask
    report(0.05, "MEDI solve")

    # ---------------------------------------------------------------- solve
    t0 = time.perf_counter()

    def solver_progress(fraction: float, stage: str) -> None:
        report(0.05 + 0.93 * fraction, stage)

    out = solve(problem, progress=solver_progress, **kwargs)
    timings["solve"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- finish
    t0 = time.perf_counter()
    x = out.x
    cost = problem.costs(x)
    if problem.csf is not None:
        x -= np.float32(x[problem.csf].mean(dtype=np.float64))
    solution = box.paste(x).astype(np.float32, copy=False) if return_solution else None
    x[~msk] = 0.0
    chi = box.paste(x)
    mask_used = box.paste(msk)
    edges_full = np.stack([box.paste(edges[a]) for a in range(3)])
    timings["finish"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    report(1.0, "MEDI done")
    return MEDIResult(
        chi=chi.astype(np.float32, copy=False),
        iterations=out.iterations,
        fft_count=problem.fft.count,
        timings=timings,
        solver=solver,
        converged=out.converged,
        edge_mask=edges_full,
        mask=mask_used,
        inner_iterations=out.inner_iterations,
        solve_shape=box.shape,
        cost=cost,
        history=out.history,
        solution=solution,
    )


def medi_objective(
    chi_rad: np.ndarray,
    field_rad: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    magnitude: np.ndarray | None = None,
    noise: np.ndarray | None = None,
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    lam: float = 1000.0,
    edge_percentage: float = 0.9,
    csf_mask: np.ndarray | None = None,
    lambda_csf: float = 100.0,
    smv_radius_mm: float | None = None,
    margin_mm: float | None = None,
) -> dict[str, float]:
    """The MEDI objective that :func:`medi` minimises, evaluated at a given susceptibility.

    ``E(chi) = lam ||W (exp(i D chi) - exp(i f))||^2 + sum_c |M_c (grad chi)_c|
    [+ lambda_csf / 2 ||P chi||^2]``, with W, M, D and P built from the same arguments exactly as
    :func:`medi` builds them, and the exact (not smoothed) L1 norm. Both solvers can so be scored
    on one objective: the toolbox solver minimises a smoothed L1 (``sqrt(g^2 + 1e-6)``) and stops
    early, ADMM the exact one.

    Parameters
    ----------
    chi_rad : (nx, ny, nz) float array
        Susceptibility in radians (the unit of ``field_rad``), **not masked**: D sees the
        susceptibility outside the mask too (``MEDIResult.solution`` of
        ``medi(..., return_solution=True)``). E does not change with a constant added to chi.
    field_rad, mask, voxel_size, magnitude, noise, b0_dir, lam, edge_percentage, csf_mask,
    lambda_csf, smv_radius_mm
        As in :func:`medi`.
    margin_mm : float or None
        Grid the objective is evaluated on (D convolves periodically on it): the image's own
        grid (None, as ``MEDI_L1.m`` and the toolbox solver) or the mask's bounding box grown by
        this many mm (the ADMM solver's grid with 6.0). chi is cropped to it.

    Returns
    -------
    dict
        ``data``, ``reg``, ``csf`` (MEDI+0 only) and their sum ``total`` (dimensionless).

    Raises
    ------
    ReconInputError
        As :func:`medi`, and when ``chi_rad`` is not a finite real array of the field's shape.

    References
    ----------
    Liu T, Liu J, de Rochefort L, Spincemaille P, Khalidov I, Ledoux JR, Wang Y. Morphology enabled
    dipole inversion (MEDI) from a single-angle acquisition: comparison with COSMOS in human brain
    imaging. Magn Reson Med 2011;66:777-783.
    """
    inputs = _Inputs.check(
        field_rad, mask, voxel_size, magnitude=magnitude, noise=noise, csf_mask=csf_mask,
        lam=lam, lambda_csf=lambda_csf, smv_radius_mm=smv_radius_mm,
    )
    chi = np.asarray(chi_rad)
    if chi.shape != inputs.field.shape:
        raise ReconInputError(f"chi has shape {chi.shape}, expected {inputs.field.shape} like the field")
    if not np.issubdtype(chi.dtype, np.number) or np.iscomplexobj(chi) or not np.all(np.isfinite(chi)):
        raise ReconInputError("chi must be finite real numbers in radians")
    problem, box, _ = _build_problem(
        inputs, b0_dir=b0_dir, lam=lam, edge_percentage=edge_percentage, lambda_csf=lambda_csf,
        smv_radius_mm=smv_radius_mm, margin_mm=_check_margin(margin_mm), timings={},
    )
    return problem.costs(box.crop(chi))
