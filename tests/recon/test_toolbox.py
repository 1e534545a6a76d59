"""The toolbox solver's conjugate gradients, against the Krylov-subspace optimum computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recon.inversion.toolbox import conjugate_gradient


def krylov_optimum(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The k-th CG iterate from 0: the minimiser of the A-norm error over span{b, Ab, ..., A^(k-1) b}."""
    basis, _ = np.linalg.qr(np.stack([np.linalg.matrix_power(a, j) @ b for j in range(k)], axis=1))
    return basis @ np.linalg.solve(basis.T @ a @ basis, basis.T @ b)


def test_it_returns_the_last_iterate_as_the_toolbox_cgsolve_does() -> None:
    # cgsolve.m of the MEDI toolbox returns the last iterate (its best-iterate line is commented
    # out). On this SPD system CG's residual grows: relative 1.041 after one iteration, 1.396 after
    # two, so the smallest residual seen is the start x = 0, and the last iterate is another point.
    a = np.diag([1.0, 3.0, 9.0, 27.0, 81.0])
    b = np.array([3.0, 1.0, 1.0, 1.0, 3.0])
    x1, x2 = krylov_optimum(a, b, 1), krylov_optimum(a, b, 2)
    rel = [np.linalg.norm(b - a @ x) / np.linalg.norm(b) for x in (x1, x2)]
    assert rel == pytest.approx([1.041, 1.396], abs=1e-3)

    x, iterations = conjugate_gradient(lambda v: a @ v, b, tol=1e-9, max_iter=2)
    assert iterations == 2
    np.testing.assert_allclose(x, x2, rtol=1e-10, atol=1e-12)


def test_it_stops_at_the_tolerance_and_keeps_the_input_dtype() -> None:
    # Distinct eigenvalues 1..5: CG is exact after 5 iterations and stops there.
    a = np.diag([1.0, 2.0, 3.0, 4.0, 5.0]).astype(np.float32)
    b = np.ones(5, np.float32)
    x, iterations = conjugate_gradient(lambda v: a @ v, b, tol=1e-4, max_iter=100)
    assert iterations <= 5 and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0 / np.diag(a), rtol=1e-4)
