"""A rater's uploaded lesion mask, checked against the session's T2* grid and rewritten by the server.

The workspace (NiiVue) saves its drawing as NIfTI with pen values 1..255 on the grid of the
background volume. The server accepts any single-file NIfTI (``.nii`` or ``.nii.gz``) that is 3-D,
on the T2* magnitude's grid (same shape, affine within 1e-3 mm), with whole-number values 0..255,
and never stores the upload itself: it stores a canonical file it writes (uint8 0/1, gzip, the
T2* series' affine as sform and qform with code 1 = scanner, no extensions, gzip mtime 0), so two
uploads of the same drawing have the same SHA-256.

The size limits are the series' ones (:mod:`qsmreview.studies.nifti`): the header's declared
size is checked against ``QSMREVIEW_MAX_VOXELS`` / ``QSMREVIEW_MAX_UNPACKED_BYTES`` before any
value is read, and the compressed upload against ``QSMREVIEW_MAX_UPLOAD_BYTES``.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from qsmreview.errors import TooLarge, ValidationFailed
from qsmreview.studies import nifti
from qsmreview.studies.uploads import human_bytes, max_upload_bytes

#: The form field of the mask in the API (errors name it).
FIELD = "mask"
#: gzip level of stored masks (binary masks compress well at any level; 6 is zlib's default).
_GZIP_LEVEL = 6
#: Room for a header and extensions on top of the data block in an uncompressed upload (bytes).
_HEADER_ROOM = 1 << 20


@dataclass(frozen=True)
class CanonicalMask:
    """The stored form of a validated mask.

    Attributes
    ----------
    data : (X, Y, Z) uint8 array of 0 and 1.
    affine : (4, 4) float64, the T2* series' affine (voxel to scanner RAS, mm).
    content : the gzip-compressed NIfTI-1 bytes to store.
    sha256 : hex SHA-256 of ``content``.
    """

    data: np.ndarray = field(repr=False)
    affine: np.ndarray = field(repr=False)
    content: bytes = field(repr=False)
    sha256: str

    @property
    def size_bytes(self) -> int:
        return len(self.content)


def max_mask_upload_bytes() -> int:
    """The largest mask upload read: the upload limit, and no more than an uncompressed file
    at the unpacked-size limit could need (so a mask is never a 2 GiB read into memory)."""
    return min(max_upload_bytes(), nifti.unpacked_bytes_limit() + _HEADER_ROOM)


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(message, field=FIELD)


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def canonical_mask_bytes(data: np.ndarray, affine: np.ndarray) -> bytes:
    """The stored NIfTI of a 0/1 mask: uint8, sform = qform = ``affine`` (code 1), gzip with mtime 0."""
    image = nib.Nifti1Image(np.asarray(data, dtype=np.uint8), np.asarray(affine, dtype=np.float64))
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return gzip.compress(image.to_bytes(), compresslevel=_GZIP_LEVEL, mtime=0)


def _fmt_affine(a: np.ndarray) -> str:
    rows = np.asarray(a, dtype=np.float64)[:3]
    return "[" + ", ".join("[" + ", ".join(f"{v:.3f}" for v in row) + "]" for row in rows) + "]"


def _check_values(data: np.ndarray) -> None:
    if data.dtype.kind == "f":
        n_nan = int(np.isnan(data).sum())
        n_inf = int(np.isinf(data).sum())
        if n_nan or n_inf:
            raise _fail(f"mask contains non-finite values ({n_nan} NaN, {n_inf} infinite)")
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if lo < 0:
        raise _fail(f"mask values must be 0..255 (0 = background); found negative values (min {lo:g})")
    if hi > 255:
        raise _fail(f"mask values must be 0..255 (0 = background); found values up to {hi:g}")
    if data.dtype.kind == "f" and not bool(np.all(np.mod(data, 1) == 0)):
        raise _fail("mask values must be whole numbers 0..255; found fractional values")


def validate_mask(mask_bytes: bytes, *, shape: Sequence[int], affine: np.ndarray) -> CanonicalMask:
    """Check an uploaded mask against the T2* grid and return its canonical stored form.

    Parameters
    ----------
    mask_bytes : the uploaded file (``.nii`` or ``.nii.gz`` bytes; the format is read from them).
    shape : the T2* magnitude's spatial shape (its first three dimensions).
    affine : (4, 4) the T2* magnitude's stored affine (``Series.affine``), mm.

    Returns
    -------
    CanonicalMask
        Values > 0 become 1; the affine is ``affine`` (not the upload's, which agrees within
        1e-3 mm).

    Raises
    ------
    TooLarge
        The upload is larger than :func:`max_mask_upload_bytes`.
    ValidationFailed
        (field ``mask``) not a NIfTI file, a declared size over the limits, not 3-D, a shape or
        affine other than the T2* grid's, a data type that is not a real number, NaN or infinite
        values, values negative, above 255 or fractional.
    """
    limit = max_mask_upload_bytes()
    if len(mask_bytes) > limit:
        raise TooLarge(
            f"mask upload of {human_bytes(len(mask_bytes))} is larger than the limit of "
            f"{human_bytes(limit)}",
            field=FIELD,
        )
    ref_shape = tuple(int(n) for n in shape[:3])
    ref_affine = np.asarray(affine, dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="qsmreview-mask-") as tmp:
        path = Path(tmp) / "mask"
        path.write_bytes(mask_bytes)
        try:
            with nifti.open_nifti(path) as (image, _fmt, _compressed):
                declared = nifti.declared_data(image)
                nifti.check_declared_size(declared)
                if len(declared.shape) != 3:
                    raise _fail(
                        f"mask is {len(declared.shape)}-D (shape {_dims(declared.shape)}); "
                        "it must be a 3-D volume on the T2* grid"
                    )
                if declared.shape != ref_shape:
                    raise _fail(f"mask shape {_dims(declared.shape)} is not the T2* grid {_dims(ref_shape)}")
                if declared.dtype.names is not None or declared.dtype.kind not in "biuf":
                    raise _fail(f"mask data type {declared.dtype} is not a real number type")
                upload_affine = np.asarray(image.affine, dtype=np.float64)
                if not nifti.same_grid(declared.shape, upload_affine, ref_shape, ref_affine):
                    raise _fail(
                        f"mask affine {_fmt_affine(upload_affine)} is not the T2* grid's "
                        f"{_fmt_affine(ref_affine)} (tolerance {nifti.GRID_TOLERANCE_MM} mm)"
                    )
                try:
                    data = np.asanyarray(image.dataobj)
                except (OSError, EOFError, zlib.error, ValueError) as exc:
                    raise _fail(f"the mask's data cannot be read (truncated or corrupt file): {exc}") from exc
        except ValidationFailed as exc:
            if exc.field in (None, "file"):  # nifti's messages name the generic "file" field
                raise _fail(exc.message) from exc
            raise
    _check_values(data)
    binary = (data > 0).astype(np.uint8)
    content = canonical_mask_bytes(binary, ref_affine)
    return CanonicalMask(
        data=binary,
        affine=ref_affine,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )
