"""Field map from one or several echoes: unwrap each echo, then fit phase against TE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recon.errors import ReconInputError
from recon.mask import check_mask, check_voxel_size
from recon.unwrap import laplacian_unwrap


@dataclass
class EchoFit:
    """Result of :func:`fit_echoes`.

    Attributes
    ----------
    frequency : (nx, ny, nz) float32
        Field as angular frequency offset in rad/s (``2 pi gamma B0 * field_ppm * 1e-6``); zero
        outside the mask.
    offset : (nx, ny, nz) float32
        Echo-independent phase offset in rad (the fitted phase at TE = 0); zero for one echo.
    noise : (nx, ny, nz) float32
        Standard error of ``frequency`` in rad/s (see :func:`fit_echoes` for how it is estimated);
        finite and positive inside the mask.
    unwrapped : (nx, ny, nz, n_echo) float32
        Unwrapped phase of each echo in rad.
    """

    frequency: np.ndarray
    offset: np.ndarray
    noise: np.ndarray
    unwrapped: np.ndarray


def _as_echoes(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ReconInputError(f"{name} must be 3-D (one echo) or 4-D (echoes on axis 3), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr) or not np.all(np.isfinite(arr)):
        raise ReconInputError(f"{name} must be finite real numbers (no NaN or inf)")
    return arr


def fit_echoes(
    phase: np.ndarray,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    te: float | Sequence[float],
    magnitude: np.ndarray | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> EchoFit:
    """Field frequency (rad/s), phase offset (rad) and frequency noise (rad/s) from echo phases.

    Each echo is unwrapped with :func:`recon.unwrap.laplacian_unwrap` inside the mask; echoes
    from the third on are shifted by the multiple of 2 pi that best matches the line through the
    first two (each echo's unwrapping has its own arbitrary constant). Then, per voxel, the
    weighted least-squares line ``phi_k = offset + frequency * TE_k`` is fitted with weights
    ``w_k = magnitude_k^2`` (phase noise std is ``sigma / magnitude``, so these are the inverse
    variances up to the common ``sigma``).

    Noise: the standard error of the slope is ``sigma * sqrt(S / (S Stt - St^2))`` with
    ``S = sum w``, ``St = sum w TE``, ``Stt = sum w TE^2``. With three echoes or more, ``sigma``
    is estimated from the weighted residuals pooled over the mask (one number for the image);
    with two echoes it is 1 (relative units). With one echo the field is ``phase / TE``, the
    offset zero and the noise ``1 / (magnitude * TE)`` (relative units, as MEDI's
    ``N_std = 1 / magnitude``); it is only a weight for the inversion.

    Parameters
    ----------
    phase : (nx, ny, nz) or (nx, ny, nz, n_echo) array
        Wrapped phase in radians.
    mask : (nx, ny, nz) bool
        Region to fit (brain).
    voxel_size : (3,) floats
        mm per axis.
    te : float or sequence of float
        Echo time(s) in s, one per echo, strictly increasing.
    magnitude : array like ``phase``, optional
        Magnitude per echo (weights). Default: uniform weights.
    progress : callable(fraction, stage), optional

    Returns
    -------
    EchoFit

    Raises
    ------
    ReconInputError
        On mismatched shapes, a TE count different from the echo count, non-positive or
        non-increasing TEs, NaNs, or an empty mask.
    """
    vs = check_voxel_size(voxel_size)
    ph = _as_echoes(phase, "phase")
    n_echo = ph.shape[3]
    tes = np.atleast_1d(np.asarray(te, dtype=np.float64))
    if tes.ndim != 1 or tes.size != n_echo:
        raise ReconInputError(f"{tes.size} echo time(s) given for {n_echo} echo(es) of phase")
    if not np.all(np.isfinite(tes)) or np.any(tes <= 0) or np.any(np.diff(tes) <= 0):
        raise ReconInputError(f"echo times must be positive and increasing (s), got {tes.tolist()}")
    m = check_mask(mask, ph.shape[:3])
    if magnitude is None:
        mag = np.ones(ph.shape, dtype=np.float32)
    else:
        mag = _as_echoes(magnitude, "magnitude")
        if mag.shape != ph.shape:
            raise ReconInputError(f"magnitude has shape {mag.shape[:3] if mag.shape[3] == 1 else mag.shape}, phase {ph.shape}")
    # Magnitude floor: a zero-signal voxel gets a tiny weight, never an infinite noise.
    floor = np.float32(1e-3 * max(float(np.percentile(mag[m], 99)), 1e-30))
    mag = np.maximum(np.abs(mag).astype(np.float32), floor)

    unwrapped = np.zeros(ph.shape, dtype=np.float32)
    for k in range(n_echo):
        if progress is not None:
            progress(k / (n_echo + 1), f"unwrapping echo {k + 1}/{n_echo}")
        unwrapped[..., k] = laplacian_unwrap(ph[..., k], vs, mask=m)
    for k in range(2, n_echo):
        pred = unwrapped[..., 0] + (unwrapped[..., 1] - unwrapped[..., 0]) * np.float32(
            (tes[k] - tes[0]) / (tes[1] - tes[0])
        )
        jump = np.round(float(np.median((unwrapped[..., k] - pred)[m])) / (2 * np.pi))
        unwrapped[..., k] -= np.float32(2 * np.pi * jump) * m
    if progress is not None:
        progress(n_echo / (n_echo + 1), "fitting phase against TE")

    if n_echo == 1:
        frequency = unwrapped[..., 0] / np.float32(tes[0])
        offset = np.zeros(ph.shape[:3], dtype=np.float32)
        noise = 1.0 / (mag[..., 0] * np.float32(tes[0]))
    else:
        w = (mag.astype(np.float64)) ** 2
        s = w.sum(axis=3)
        st = (w * tes).sum(axis=3)
        stt = (w * tes**2).sum(axis=3)
        sp = (w * unwrapped).sum(axis=3)
        stp = (w * tes * unwrapped).sum(axis=3)
        det = s * stt - st**2
        slope = (s * stp - st * sp) / det
        icept = (stt * sp - st * stp) / det
        if n_echo >= 3:
            resid = unwrapped - icept[..., None] - slope[..., None] * tes
            sigma2 = float((w * resid**2).sum(axis=3)[m].sum() / (m.sum() * (n_echo - 2)))
            sigma = np.sqrt(max(sigma2, 1e-30))
        else:
            sigma = 1.0
        frequency = slope.astype(np.float32)
        offset = icept.astype(np.float32)
        noise = (sigma * np.sqrt(s / det)).astype(np.float32)
    frequency[~m] = 0.0
    offset[~m] = 0.0
    noise = noise.astype(np.float32)
    noise[~m] = 0.0
    if progress is not None:
        progress(1.0, "echo fit done")
    return EchoFit(frequency=frequency, offset=offset, noise=noise, unwrapped=unwrapped)
