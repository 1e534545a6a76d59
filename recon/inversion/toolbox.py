"""The MEDI toolbox's own solver: Gauss-Newton with lagged-diffusivity L1 and conjugate gradients.

This reproduces ``MEDI_L1.m`` (solver ``'gaussnewton'``) of the Cornell MEDI toolbox:

- start from x = 0;
- each outer iteration fixes the L1 weight ``Vr = 1 / sqrt(|w grad x|^2 + eps)`` (eps = 1e-6, per
  gradient component) and the linearisation point ``exp(i D x)``, and solves

      [grad^T w Vr w grad + 2 lam D^T m^2 D (+ lam_csf P)] dx = -b,
      b = grad^T w Vr w grad x + 2 lam D^T (m^2 sin(D x - f)) (+ lam_csf P x)

  by conjugate gradients (relative residual 0.01, at most 100 iterations, returning the last
  iterate, as the toolbox's ``cgsolve.m``, whose best-iterate line is commented out);
- stops after 10 outer iterations or when ``||dx|| / ||x|| < 0.1`` (x before the update).

It is slow (each CG iteration costs 4 FFTs) but it is the reference published MEDI numbers come
from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from recon.inversion.gradient import divergence, gradient
from recon.inversion.problem import MEDIProblem

Progress = Callable[[float, str], None]


@dataclass
class SolverOutput:
    """What a solver hands back to :func:`recon.inversion.medi.medi` (x on the solve grid)."""

    x: np.ndarray
    iterations: int
    converged: bool
    inner_iterations: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class _Normal:
    """The Gauss-Newton matrix ``A`` of one outer iteration, with reused buffers."""

    def __init__(self, p: MEDIProblem, reg_weight: np.ndarray) -> None:
        self.p = p
        self.reg_weight = reg_weight  # w * Vr * w, (3, ...)
        self.gbuf = np.empty((3, *p.shape), dtype=np.float32)
        self.dbuf = np.empty(p.shape, dtype=np.float32)
        self.two_lam = np.float32(2.0 * p.lam)

    def reg(self, x: np.ndarray) -> np.ndarray:
        """``grad^T (reg_weight * grad x)`` (a new array)."""
        g = gradient(x, self.p.voxel_size, out=self.gbuf)
        g *= self.reg_weight
        out = divergence(g, self.p.voxel_size, out=np.empty(self.p.shape, dtype=np.float32))
        np.negative(out, out=out)
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.reg(x)
        dx = self.p.dconv(x)
        dx *= self.p.weight2
        dx = self.p.dconv(dx)
        dx *= self.two_lam
        out += dx
        if self.p.csf is not None and self.p.lam_csf > 0:
            out += np.float32(self.p.lam_csf) * self.p.csf_project(x)
        return out


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()))


def conjugate_gradient(
    apply_a: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    *,
    tol: float = 0.01,
    max_iter: int = 100,
) -> tuple[np.ndarray, int]:
    """Solve ``A x = b`` (A symmetric positive semi-definite) from x = 0, as the toolbox's cgsolve.

    Stops when ``||r|| <= tol ||b||`` or after ``max_iter`` iterations and returns the **last**
    iterate and the number of iterations run, as ``cgsolve.m`` of the MEDI toolbox does (its
    ``x = reshape(bestx, ...)`` is commented out). CG's residual is not monotone, so the last
    iterate need not have the smallest residual; it is the one that minimises the A-norm error
    over the Krylov space. The residual is recomputed from scratch every 50 iterations against
    round-off drift, as there. Scalars keep the dtype of ``b``.

    References
    ----------
    Hestenes MR, Stiefel E. Methods of conjugate gradients for solving linear systems. J Res Natl
    Bur Stand 1952;49:409-436.
    """
    x = np.zeros_like(b)
    r = b.copy()
    d = r.copy()
    delta = _dot(r, r)
    delta0 = delta
    if delta0 == 0.0:
        return x, 0
    scalar = b.dtype.type
    it = 0
    while it < max_iter and delta > tol * tol * delta0:
        q = apply_a(d)
        dq = _dot(d, q)
        if dq <= 0.0:
            break
        alpha = scalar(delta / dq)
        x += alpha * d
        if (it + 1) % 50 == 0:
            r = b - apply_a(x)
        else:
            r -= alpha * q
        delta_old, delta = delta, _dot(r, r)
        d *= scalar(delta / delta_old)
        d += r
        it += 1
    return x, it


def solve_gauss_newton(
    p: MEDIProblem,
    *,
    max_iter: int = 10,
    tol_update: float = 0.1,
    cg_tol: float = 0.01,
    cg_max_iter: int = 100,
    eps: float = 1e-6,
    progress: Progress | None = None,
) -> SolverOutput:
    """Minimise the MEDI objective as ``MEDI_L1.m`` does (see the module docstring).

    Parameters
    ----------
    p : MEDIProblem
        The objective on the solve grid.
    max_iter : int
        Maximum Gauss-Newton (outer) iterations (toolbox: 10).
    tol_update : float
        Stop when ``||dx|| / ||x|| < tol_update`` with x before the update (toolbox: 0.1).
    cg_tol, cg_max_iter : float, int
        Inner CG relative-residual tolerance and iteration cap (toolbox: 0.01, 100).
    eps : float
        L1 smoothing inside the square root, (rad/mm)^2 (toolbox: 1e-6).
    progress : callable(fraction, stage) or None
        Called after every outer iteration with the fraction of ``max_iter`` done.

    Returns
    -------
    SolverOutput
        ``x`` in radians on the solve grid.
    """
    x = np.zeros(p.shape, dtype=np.float32)
    history: list[dict[str, float]] = []
    converged = False
    inner_total = 0
    it = 0
    e = np.float32(eps)
    while it < max_iter:
        t0 = time.perf_counter()
        it += 1
        g = gradient(x, p.voxel_size)
        g *= p.penalty
        # reg_weight = w * Vr * w with Vr = 1/sqrt(|w grad x|^2 + eps)
        np.square(g, out=g)
        g += e
        np.sqrt(g, out=g)
        np.reciprocal(g, out=g)
        g *= p.penalty
        g *= p.penalty
        a_op = _Normal(p, g)

        dx_field = p.dconv(x)
        dx_field -= p.field
        np.sin(dx_field, out=dx_field)
        dx_field *= p.weight2
        b = p.dconv(dx_field)
        b *= np.float32(2.0 * p.lam)
        b += a_op.reg(x)
        if p.csf is not None and p.lam_csf > 0:
            b += np.float32(p.lam_csf) * p.csf_project(x)
        np.negative(b, out=b)

        dx, n_inner = conjugate_gradient(a_op, b, tol=cg_tol, max_iter=cg_max_iter)
        inner_total += n_inner
        xnorm = float(np.linalg.norm(x))
        ratio = float(np.linalg.norm(dx)) / xnorm if xnorm > 0 else float("inf")
        x += dx
        history.append({"iteration": it, "update_ratio": ratio, "cg_iterations": n_inner, "seconds": time.perf_counter() - t0})
        if progress is not None:
            progress(it / max_iter, f"MEDI Gauss-Newton iteration {it}, update {ratio:.3f}")
        if ratio < tol_update:
            converged = True
            break
    return SolverOutput(x=x, iterations=it, converged=converged, inner_iterations=inner_total, history=history)
