"""Recognise the unit of a phase image and bring it to radians in [-pi, pi]."""

from __future__ import annotations

import numpy as np

from recon.errors import ReconInputError

#: Tolerance for "within [-pi, pi]" (float32 rounding of stored radians).
_PI_TOL = 1e-3


def phase_to_radians(phase: np.ndarray) -> tuple[np.ndarray, str]:
    """Return phase in radians (float32) and a short description of the conversion applied.

    Accepted inputs:

    - radians already: all finite values within [-pi, pi] (small rounding tolerated);
    - scaled integer phase as written by scanners (e.g. Siemens 12-bit): integer-valued data
      spanning a signed range within [-4096, 4095] (mapped by ``x * pi / 4096``) or an unsigned
      range within [0, 4095] (``x * 2 pi / 4096 - pi``);
    - degrees would be ambiguous with integer phase and are rejected.

    Raises
    ------
    ReconInputError
        On non-finite values or a range that is neither radians nor a recognisable integer phase.
    """
    x = np.asarray(phase)
    if x.size == 0:
        raise ReconInputError("phase image is empty")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ReconInputError(f"phase must be real numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise ReconInputError("phase contains NaN or infinite values")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= -np.pi - _PI_TOL and hi <= np.pi + _PI_TOL:
        return np.clip(x.astype(np.float32), -np.pi, np.pi), "radians"
    integer_valued = np.issubdtype(x.dtype, np.integer) or bool(np.all(np.mod(x, 1) == 0))
    if integer_valued and lo >= -4096 and hi <= 4095:
        if lo < 0:
            out = x.astype(np.float32) * np.float32(np.pi / 4096.0)
            return np.clip(out, -np.pi, np.pi), "scaled integer phase [-4096, 4095] -> radians"
        out = x.astype(np.float32) * np.float32(2 * np.pi / 4096.0) - np.float32(np.pi)
        return np.clip(out, -np.pi, np.pi), "scaled integer phase [0, 4095] -> radians"
    raise ReconInputError(
        f"phase values span [{lo:g}, {hi:g}]: neither radians within [-pi, pi] nor a scaled "
        "integer phase within [-4096, 4095]"
    )
