"""Forward-difference gradient and its negative adjoint (divergence), with per-axis voxel size.

These are the discrete operators of the MEDI toolbox (``fgrad`` / ``bdiv``): the gradient along
axis ``a`` is ``(x[i+1] - x[i]) / voxel_size[a]`` and, at the default Neumann boundary, is zero on
the last plane of each axis. The divergence is defined so that

    <gradient(x), g> = -<x, divergence(g)>

holds exactly (the toolbox's ``bdiv`` returns ``-divergence``, i.e. the adjoint itself). With
``periodic=True`` the last plane differences wrap around to the first one; that form is
diagonalised by the FFT and is what the ADMM solver inverts in closed form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _sl(axis: int, s: slice) -> tuple[slice, ...]:
    out = [slice(None)] * 3
    out[axis] = s
    return tuple(out)


def gradient(
    x: np.ndarray,
    voxel_size: Sequence[float],
    *,
    periodic: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Forward differences of a 3-D image along each axis.

    Parameters
    ----------
    x : (nx, ny, nz) float array
        Image (any unit u).
    voxel_size : (3,) floats
        Voxel size in mm along each array axis (anisotropic sizes are kept per axis).
    periodic : bool
        False (default, as the MEDI toolbox): zero difference on the last plane of each axis.
        True: the last plane differences wrap to the first plane.
    out : (3, nx, ny, nz) float32 array, optional
        Buffer to write into (returned).

    Returns
    -------
    g : (3, nx, ny, nz) float32
        ``g[a]`` is the difference along axis ``a`` in u/mm.
    """
    if out is None:
        out = np.empty((3, *x.shape), dtype=np.float32)
    for a in range(3):
        ga = out[a]
        np.subtract(x[_sl(a, slice(1, None))], x[_sl(a, slice(None, -1))], out=ga[_sl(a, slice(None, -1))])
        last = ga[_sl(a, slice(-1, None))]
        if periodic:
            np.subtract(x[_sl(a, slice(0, 1))], x[_sl(a, slice(-1, None))], out=last)
        else:
            last[...] = 0.0
        ga *= np.float32(1.0 / float(voxel_size[a]))
    return out


def divergence(
    g: np.ndarray,
    voxel_size: Sequence[float],
    *,
    periodic: bool = False,
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray:
    """Backward-difference divergence, the negative adjoint of :func:`gradient`.

    Parameters
    ----------
    g : (3, nx, ny, nz) float array
        Vector field (u/mm), e.g. the output of :func:`gradient`.
    voxel_size : (3,) floats
        Voxel size in mm along each array axis.
    periodic : bool
        Must match the ``periodic`` of the gradient it is paired with. For the Neumann (default)
        form the last plane of ``g[a]`` is ignored, as the gradient is zero there.
    out : (nx, ny, nz) float32 array, optional
        Buffer to write into (returned).
    work : (nx, ny, nz) float32 array, optional
        Scratch buffer (saves an allocation per call).

    Returns
    -------
    d : (nx, ny, nz) float32
        ``sum_a (g_a[i] - g_a[i-1]) / voxel_size[a]`` (u/mm^2), so that
        ``<gradient(x), g> == -<x, divergence(g)>``.
    """
    shape = g.shape[1:]
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    if work is None:
        work = np.empty(shape, dtype=np.float32)
    for a in range(3):
        ga = g[a]
        d = out if a == 0 else work
        n = shape[a]
        body, prev = _sl(a, slice(1, None)), _sl(a, slice(None, -1))
        head, tail = _sl(a, slice(0, 1)), _sl(a, slice(-1, None))
        if periodic:
            # d[i] = g[i] - g[i-1], with g[-1] = g[n-1]
            np.subtract(ga[body], ga[prev], out=d[body])
            np.subtract(ga[head], ga[tail], out=d[head])
        elif n == 1:
            d[...] = 0.0
        else:
            # d[0] = g[0]; d[i] = g[i] - g[i-1] (0 < i < n-1); d[n-1] = -g[n-2]
            np.subtract(ga[body], ga[prev], out=d[body])
            d[head] = ga[head]
            np.negative(ga[_sl(a, slice(-2, -1))], out=d[tail])
        d *= np.float32(1.0 / float(voxel_size[a]))
        if a > 0:
            out += d
    return out
