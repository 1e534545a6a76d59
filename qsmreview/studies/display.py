"""Display volumes for the browser viewer: one 3-D uint8 image per series, with its scaling.

The rater's viewer (NiiVue in WebGL) is fastest with uint8 volumes: a quarter of float32's bytes to
fetch, unpack and upload as a texture. :func:`display_volume` turns a series' array into that: a
multi-echo magnitude is first combined into one volume (:func:`combine_echoes`), then intensities
are quantised to 0..255 over a robust range, and the NIfTI scaling (``scl_slope``,
``scl_inter``) is returned so that ``stored * slope + inter`` gives back the source intensities to
within half a quantisation step inside that range (voxels outside it are clipped to its ends).
:func:`display_nifti_bytes` writes the result as an uncompressed NIfTI-1 on the source's grid.

No Django here: the API's caching and access checks live in
:mod:`qsmreview.studies.services.display`.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

#: Bump when the conversion changes: it names the cache files and the ETag of every display.
DISPLAY_VERSION = 1
#: Percentiles (of the non-zero finite voxels) that bound the quantised range.
ROBUST_PERCENTILES = (0.5, 99.5)
#: Offset of the data in a NIfTI-1 file with no header extensions (348-byte header + 4 bytes).
NIFTI1_DATA_OFFSET = 352
#: Largest stored value of a uint8 display.
LEVELS = 255

# Header fields that carry a NIfTI grid; copied from the source so the affine is the same.
_GRID_FIELDS = (
    "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d",
    "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z",
)


@dataclass(frozen=True)
class DisplayVolume:
    """A display image and the scaling that maps it back to source intensities.

    Attributes
    ----------
    data : (X, Y, Z) uint8.
    slope, inter : source value ~= ``data * slope + inter`` (the NIfTI ``scl_slope``/``scl_inter``).
    exact : True when the source values were whole numbers in 0..255, passed through unscaled
        (labels such as masks and tissue classes, 8-bit images); then slope = 1 and inter = 0.
    """

    data: np.ndarray
    slope: float
    inter: float
    exact: bool


def combine_echoes(data: np.ndarray) -> np.ndarray:
    """Root-sum-of-squares over echoes: the usual single image shown for multi-echo magnitude.

    ``sqrt(sum_e m_e**2)`` treats the echoes as channels of one voxel, as coil images are
    combined: it weights each echo by its own signal (the SNR-optimal weighting when the noise is
    equal and independent across echoes, Larsson et al.), so the early echoes' SNR dominates while
    the later echoes add their T2* contrast (veins and iron-rich lesion rims darker).

    Parameters
    ----------
    data : (X, Y, Z) or (X, Y, Z, n_echoes) real array (echoes on axis 3). Not modified.

    Returns
    -------
    (X, Y, Z) float32: the input itself (as float32) when 3-D.

    References
    ----------
    Roemer PB, Edelstein WA, Hayes CE, Souza SP, Mueller OM. The NMR phased array. Magn Reson Med
    1990;16(2):192-225 (root-sum-of-squares combination).
    Larsson EG, Erdogmus D, Yan R, Principe JC, Fitzsimmons JR. SNR-optimality of sum-of-squares
    reconstruction for phased-array magnetic resonance imaging. J Magn Reson 2003;163(1):121-123.
    """
    arr = np.asarray(data)
    if arr.ndim == 3:
        return arr.astype(np.float32, copy=False)
    if arr.ndim != 4:
        raise ValueError(f"expected a 3-D or 4-D array, got shape {arr.shape}")
    # Accumulate echo by echo in float64: no 4-D float64 temporary.
    total = np.zeros(arr.shape[:3], dtype=np.float64)
    for e in range(arr.shape[3]):
        echo = arr[..., e].astype(np.float64)
        total += echo * echo
    return np.sqrt(total).astype(np.float32)


def _whole_bytes(values: np.ndarray) -> bool:
    """Whether every value is a whole number in 0..255 (so uint8 holds it exactly)."""
    if values.dtype.kind in "biu":
        return values.size == 0 or (int(values.min()) >= 0 and int(values.max()) <= LEVELS)
    if values.size == 0:
        return True
    lo, hi = float(values.min()), float(values.max())
    return lo >= 0 and hi <= LEVELS and bool(np.all(values == np.round(values)))


def display_volume(data: np.ndarray) -> DisplayVolume:
    """Quantise a 3-D volume to uint8 for display, with the scaling back to source values.

    Rules, in order:

    1. Non-finite voxels (NaN, +-inf) are shown as stored 0 and ignored by the statistics. Stored
       series never hold them (upload validation refuses them), so this only guards the viewer.
    2. When every finite value is a whole number in 0..255 (brain mask, lesion mask, FSL tissue
       classes, lesion ids up to 255, an 8-bit image) the values pass through unchanged:
       slope 1, inter 0, ``exact=True``.
    3. Otherwise the range is the 0.5th to 99.5th percentile of the non-zero finite voxels
       (zeros are the background outside the head, and would pull the low end down), widened to
       include 0 so that a non-negative image (magnitude, T1, FLAIR) keeps its zeros at stored 0
       and a signed one (QSM) keeps 0 inside the range. ``slope = (hi - lo) / 255`` and
       ``inter = lo``; values are clipped to the range and rounded to the nearest level, so inside
       the range ``stored * slope + inter`` is within ``slope / 2`` of the source (plus float32
       rounding of the header fields).
    4. A volume that is all zero (or has no finite voxel) is stored as zeros with slope 1, inter 0.
       A constant non-zero volume ``c`` gets the range [min(c, 0), max(c, 0)], so ``c`` is stored
       as 255 (or 0 when negative) and recovered to float32 precision.

    Parameters
    ----------
    data : (X, Y, Z) real array. Not modified. Combine echoes first (:func:`combine_echoes`).

    Returns
    -------
    DisplayVolume

    Raises
    ------
    ValueError
        ``data`` is not 3-D or not real-valued.
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"expected real values, got dtype {arr.dtype}")
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
    values = arr[finite] if finite is not None and not finite.all() else arr.reshape(-1)
    if _whole_bytes(values):
        out = np.zeros(arr.shape, dtype=np.uint8)
        if finite is None:
            out[...] = arr
        else:
            out[finite] = arr[finite]
        return DisplayVolume(out, 1.0, 0.0, True)

    nonzero = values[values != 0].astype(np.float64, copy=False)
    if nonzero.size == 0:
        return DisplayVolume(np.zeros(arr.shape, dtype=np.uint8), 1.0, 0.0, False)
    p_lo, p_hi = np.percentile(nonzero, ROBUST_PERCENTILES)
    lo, hi = min(float(p_lo), 0.0), max(float(p_hi), 0.0)
    # The header stores float32: compute with the values a reader will use.
    slope = float(np.float32((hi - lo) / LEVELS))
    inter = float(np.float32(lo))
    # float32 arithmetic: half the memory of float64 at 384 x 384 x 90, and its rounding error
    # (~1e-7 relative) is far below one level.
    levels = (arr.astype(np.float32) - np.float32(inter)) / np.float32(slope)
    if finite is not None:
        levels[~finite] = 0.0
    np.rint(levels, out=levels)
    np.clip(levels, 0, LEVELS, out=levels)
    out = levels.astype(np.uint8)
    return DisplayVolume(out, slope, inter, False)


def display_nifti_bytes(
    display: DisplayVolume, header: nib.Nifti1Header | nib.Nifti2Header, *, description: str = ""
) -> bytes:
    """An uncompressed NIfTI-1 file of ``display`` on the grid described by ``header``.

    The source header's qform and sform (codes, quaternion, offsets, rows) and voxel size are
    copied as they are, so a reader computes the same affine; nothing else is taken from it (no
    header extensions, no intent, no calibration). The file is exactly
    ``NIFTI1_DATA_OFFSET + X*Y*Z`` bytes.

    Parameters
    ----------
    display : the image and its scaling.
    header : the source's NIfTI-1 or NIfTI-2 header (e.g. ``image.header``). Not modified.
    description : up to 80 ASCII characters for the header's ``descrip`` field.
    """
    out = nib.Nifti1Header()
    out.set_data_dtype(np.uint8)
    out.set_data_shape(display.data.shape)
    for name in _GRID_FIELDS:
        out[name] = header[name]
    pixdim = np.asarray(header["pixdim"], dtype=np.float64)
    new_pixdim = np.ones(8, dtype=np.float64)
    new_pixdim[:4] = pixdim[:4]  # qfac and the voxel size
    out["pixdim"] = new_pixdim
    out["xyzt_units"] = header["xyzt_units"]
    out["scl_slope"] = display.slope
    out["scl_inter"] = display.inter
    out["descrip"] = description.encode("ascii", "replace")[:80]
    out["vox_offset"] = NIFTI1_DATA_OFFSET
    # 348-byte header, the 4-byte extension flag (zero: no extensions), then the data in F order.
    return out.binaryblock + b"\0\0\0\0" + np.asfortranarray(display.data).tobytes(order="F")


def display_nifti_size(shape: tuple[int, ...]) -> int:
    """Size in bytes of :func:`display_nifti_bytes`' output for a source of ``shape``."""
    return NIFTI1_DATA_OFFSET + int(np.prod([int(n) for n in shape[:3]], dtype=np.int64))
