"""The MEDI objective on the solve grid, shared by both solvers.

On the cropped grid (see :class:`recon.fft.SolveBox`) the objective of the MEDI toolbox is

    E(x) = lam * || m (exp(i D x) - exp(i f)) ||_2^2 + sum_c | w_c (grad x)_c |
           [+ lam_csf / 2 * || P x ||_2^2]

with x and f in radians, ``D`` the (optionally SMV-filtered) dipole convolution, ``m`` the data
weight (zero outside the mask, mean 1 inside), ``w`` the 0/1 penalty weight of each gradient
component (0 on edges) and ``P x = csf * (x - mean_csf(x))`` the MEDI+0 projection. The CSF term
carries the factor 1/2 because the toolbox adds ``lam_csf * P`` (not ``2 lam_csf P``) to both its
gradient and its Gauss-Newton matrix; its ``lambda_CSF`` therefore means that.

The penalty weight is also zero on the last plane of each axis, where the Neumann gradient is
identically zero anyway: this makes the objective the same whether the gradient is taken with the
Neumann boundary (toolbox solver) or the periodic one (ADMM solver).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recon.fft import RealFFT
from recon.inversion.gradient import gradient


@dataclass
class MEDIProblem:
    """Everything a solver needs, on the solve grid (all float32 unless stated)."""

    fft: RealFFT
    voxel_size: tuple[float, float, float]
    #: Dipole kernel, half spectrum (nx, ny, nz//2+1); SMV-filtered when SMV is on.
    kernel: np.ndarray
    #: Local field in radians, zero outside the mask.
    field: np.ndarray
    #: Squared data weight m**2 (zero outside the mask).
    weight2: np.ndarray
    #: Penalty weight per gradient component, (3, nx, ny, nz), 1 = penalised, 0 = edge.
    penalty: np.ndarray
    mask: np.ndarray
    lam: float
    csf: np.ndarray | None = None
    lam_csf: float = 0.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.fft.shape

    def dconv(self, x: np.ndarray) -> np.ndarray:
        """``D x`` (radians), a periodic convolution on the solve grid (2 FFTs)."""
        return self.fft.convolve(x, self.kernel)

    def csf_project(self, x: np.ndarray) -> np.ndarray:
        """``P x = csf * (x - mean over csf of x)``; zero when there is no CSF term."""
        if self.csf is None:
            return np.zeros_like(x)
        out = x - np.float32(x[self.csf].mean(dtype=np.float64))
        out[~self.csf] = 0.0
        return out

    def costs(self, x: np.ndarray, dx: np.ndarray | None = None) -> dict[str, float]:
        """Terms of the objective at ``x`` (``dx = D x`` may be passed to save two FFTs)."""
        if dx is None:
            dx = self.dconv(x)
        data = float(self.lam * np.sum(self.weight2 * (2.0 - 2.0 * np.cos(dx - self.field)), dtype=np.float64))
        g = gradient(x, self.voxel_size)
        reg = float(np.sum(np.abs(g * self.penalty), dtype=np.float64))
        out = {"data": data, "reg": reg}
        if self.csf is not None and self.lam_csf > 0:
            px = self.csf_project(x)
            out["csf"] = float(0.5 * self.lam_csf * np.sum(px.astype(np.float64) ** 2))
        out["total"] = sum(out.values())
        return out


def periodic_laplacian_symbol(shape: Sequence[int], voxel_size: Sequence[float]) -> np.ndarray:
    """``sum_a |exp(2 pi i k_a / n_a) - 1|^2 / h_a^2`` on the rfft half spectrum (float32).

    The Fourier symbol of ``-divergence(gradient(.))`` with periodic forward differences.
    """
    nx, ny, nz = (int(n) for n in shape)
    parts = []
    for n, h, half in ((nx, voxel_size[0], False), (ny, voxel_size[1], False), (nz, voxel_size[2], True)):
        k = np.arange(n // 2 + 1) if half else np.fft.fftfreq(n) * n
        parts.append(((2.0 - 2.0 * np.cos(2.0 * np.pi * k / n)) / float(h) ** 2).astype(np.float32))
    return parts[0][:, None, None] + parts[1][None, :, None] + parts[2][None, None, :]
