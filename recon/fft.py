"""Shared FFT helpers: fast transform lengths, a counting real-FFT engine and the solve box.

The iterative solvers of :mod:`recon.inversion` spend nearly all their time in 3-D real FFTs, so
they run on the smallest grid that holds the mask: the mask's bounding box plus a margin, each
axis rounded up to a length ``scipy.fft.next_fast_len`` likes. :class:`SolveBox` crops the input
arrays onto that grid (zero-filling where the margin reaches past the image) and pastes results
back; :class:`RealFFT` wraps ``scipy.fft.rfftn`` / ``irfftn`` with all cores and counts every
transform so callers can report the work done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from recon.errors import ReconInputError


def fast_length(n: int) -> int:
    """Smallest length ``>= n`` that real FFTs handle quickly (only factors 2, 3, 5, 7, 11)."""
    return int(scipy.fft.next_fast_len(int(n), real=True))


class RealFFT:
    """Real 3-D FFTs on one fixed grid, using every core, with a running count of transforms.

    Parameters
    ----------
    shape : (3,) ints
        Real-space grid shape. The half spectrum has shape ``(nx, ny, nz // 2 + 1)``.
    workers : int
        Threads for ``scipy.fft`` (-1: all cores).
    """

    def __init__(self, shape: Sequence[int], *, workers: int = -1) -> None:
        self.shape: tuple[int, int, int] = tuple(int(n) for n in shape)  # type: ignore[assignment]
        self.spectrum_shape: tuple[int, int, int] = (
            self.shape[0],
            self.shape[1],
            self.shape[2] // 2 + 1,
        )
        self.workers = workers
        self.count = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``rfftn(x)`` as complex64 (``x`` is not modified)."""
        self.count += 1
        return scipy.fft.rfftn(x, workers=self.workers)

    def inverse(self, xk: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
        """``irfftn(xk)`` on the real grid, float32. ``overwrite=True`` lets scipy reuse ``xk``."""
        self.count += 1
        return scipy.fft.irfftn(xk, s=self.shape, workers=self.workers, overwrite_x=overwrite)

    def convolve(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Periodic convolution ``irfftn(kernel * rfftn(x))`` with a half-spectrum ``kernel``."""
        xk = self.forward(x)
        xk *= kernel
        return self.inverse(xk, overwrite=True)


@dataclass(frozen=True)
class SolveBox:
    """Where the solve grid sits in the image grid.

    ``start`` may be negative and ``start + shape`` may exceed the image: those parts of the solve
    grid lie outside the image and are zero-filled by :meth:`crop`.
    """

    image_shape: tuple[int, int, int]
    start: tuple[int, int, int]
    shape: tuple[int, int, int]

    @classmethod
    def whole(cls, image_shape: Sequence[int]) -> SolveBox:
        """The image's own grid, unchanged (what the MEDI toolbox's solvers use)."""
        shape = tuple(int(n) for n in image_shape)
        return cls(image_shape=shape, start=(0, 0, 0), shape=shape)  # type: ignore[arg-type]

    def _slices(self) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        src, dst = [], []
        for s, n, big in zip(self.start, self.shape, self.image_shape):
            lo, hi = max(s, 0), min(s + n, big)
            src.append(slice(lo, hi))
            dst.append(slice(lo - s, hi - s))
        return tuple(src), tuple(dst)

    def crop(self, image: np.ndarray, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """Copy of ``image`` on the solve grid (zeros outside the image), as ``dtype``."""
        src, dst = self._slices()
        out = np.zeros(self.shape, dtype=dtype)
        out[dst] = image[src]
        return out

    def paste(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Image-sized array holding ``values`` (solve grid) inside the box, ``fill`` elsewhere."""
        src, dst = self._slices()
        out = np.full(self.image_shape, fill, dtype=values.dtype)
        out[src] = values[dst]
        return out


def solve_box(
    mask: np.ndarray, voxel_size: Sequence[float], *, margin_mm: float = 6.0
) -> SolveBox:
    """Bounding box of ``mask`` grown by ``margin_mm`` on every side, with fast FFT lengths.

    Parameters
    ----------
    mask : (nx, ny, nz) bool
        Region of interest; must not be empty.
    voxel_size : (3,) floats
        Voxel size in mm (each axis gets its own margin in voxels: ``ceil(margin_mm / size)``).
    margin_mm : float
        Zero margin around the mask in mm. It keeps the periodic dipole convolution of the solver
        from wrapping the field of one side of the object onto the other.

    Returns
    -------
    SolveBox
        The grid may extend past the image; the extra is split evenly on both sides.
    """
    idx = np.nonzero(np.any(mask, axis=(1, 2))), np.nonzero(np.any(mask, axis=(0, 2))), np.nonzero(
        np.any(mask, axis=(0, 1))
    )
    if any(i[0].size == 0 for i in idx):
        raise ReconInputError("mask is empty")
    start, shape = [], []
    for axis, (i,) in enumerate(idx):
        pad = int(np.ceil(margin_mm / float(voxel_size[axis])))
        lo, hi = int(i[0]) - pad, int(i[-1]) + 1 + pad
        n = fast_length(hi - lo)
        lo -= (n - (hi - lo)) // 2
        start.append(lo)
        shape.append(n)
    return SolveBox(
        image_shape=tuple(int(n) for n in mask.shape),  # type: ignore[arg-type]
        start=tuple(start),  # type: ignore[arg-type]
        shape=tuple(shape),  # type: ignore[arg-type]
    )
