"""A rater's uploaded lesion mask, checked against the session's T2* grid and rewritten by the server.

The workspace (NiiVue) saves its drawing as NIfTI with pen values 1..255 on the grid of the
background volume. The server accepts any single-file NIfTI (``.nii`` or ``.nii.gz``) that is 3-D,
on the T2* magnitude's grid (same shape, affine within 1e-3 mm), with whole-number values 0..255,
and never stores the upload itself: it stores a canonical file it writes (uint8 0/1, gzip, the
T2* series' affine as sform and qform with code 1 = scanner, no extensions, gzip mtime 0), so two
uploads of the same drawing have the same SHA-256.

A save must take well under 100 ms on a 384 x 384 x 90 grid (issue 16), so the upload is
decompressed once, in memory, only after its header has passed every check; values are checked
on the few non-zero voxels only; and the stored file is a header written once plus the 0/1 voxels
deflated with zlib's run-length strategy in pieces, where a piece of zeros (nearly all of a mask
of a few lesions) is a cached constant (17.6 KB for five lesions at 384 x 384 x 90, in ~10 ms).

The size limits are the series' ones (:mod:`qsmreview.studies.nifti`): the header's declared
size is checked against ``QSMREVIEW_MAX_VOXELS`` / ``QSMREVIEW_MAX_UNPACKED_BYTES`` before any
value is read, and the compressed upload against ``QSMREVIEW_MAX_UPLOAD_BYTES``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np

from qsmreview.errors import TooLarge, ValidationFailed
from qsmreview.studies import nifti
from qsmreview.studies.uploads import human_bytes, max_upload_bytes

try:  # ISA-L inflates a 384 x 384 x 90 upload in ~6-11 ms where zlib takes ~35-65 ms (2 loaded cores)
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - the same bytes, more slowly
    _inflate = zlib  # type: ignore[assignment]
#: What a corrupt stream raises (isal's error is not a zlib.error).
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)

#: The form field of the mask in the API (errors name it).
FIELD = "mask"
#: zlib level of stored masks. Deflate's run-length strategy (``Z_RLE``) is used, whose speed and
#: output do not depend on the level: deflating all 13.3 MB of a 384 x 384 x 90 mask with five
#: lesions at once, it makes 13.5 KB in ~40 ms, where the default strategy takes ~110 ms at level
#: 6 for 13.5 KB and ~40 ms at level 1 for 59 KB (2 loaded cores).
_DEFLATE_LEVEL = 6
#: Voxels deflated per piece (bytes): a piece with no lesion voxel is a cached constant. Each
#: piece restarts deflate: at 384 x 384 x 90 with five lesions, pieces of 16 / 64 / 256 KiB store
#: 30.8 / 17.6 / 14.7 KB in 9.6 / 10.8 / 14.6 ms (before the CRC of zero pieces was cached).
_PIECE_BYTES = 1 << 16
#: gzip member header: deflate, no flags, mtime 0 (equal masks give equal bytes), OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: An empty final deflate block (fixed Huffman codes), closing the concatenated pieces.
_FINAL_BLOCK = b"\x03\x00"
#: Room for a header and extensions on top of the data block in an uncompressed upload (bytes).
_HEADER_ROOM = 1 << 20
#: Bytes of a NIfTI-1 header with no extensions: 348 + the 4-byte extension flag.
_NIFTI1_OFFSET = 352


@dataclass(frozen=True)
class CanonicalMask:
    """The stored form of a validated mask.

    Attributes
    ----------
    data : (X, Y, Z) uint8 array of 0 and 1 (read-only; Fortran order, as NIfTI stores it).
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

    @property
    def voxels(self) -> np.ndarray:
        """``data`` as booleans (a view, no copy): what :mod:`qsmreview.lesions` labels fastest."""
        return self.data.view(np.bool_)


def max_mask_upload_bytes() -> int:
    """The largest mask upload read: the upload limit, and no more than an uncompressed file
    at the unpacked-size limit could need (so a mask is never a 2 GiB read into memory)."""
    return min(max_upload_bytes(), nifti.unpacked_bytes_limit() + _HEADER_ROOM)


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(message, field=FIELD)


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def canonical_header(shape: Sequence[int], affine: np.ndarray) -> bytes:
    """The 352 bytes before the voxels of a stored mask: a NIfTI-1 header (uint8, ``shape``,
    sform = qform = ``affine`` with code 1, units mm and s, data at byte 352) and an empty
    extension flag."""
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(int(n) for n in shape))
    header.set_data_dtype(np.uint8)
    a = np.asarray(affine, dtype=np.float64)
    header.set_qform(a, code=1)
    header.set_sform(a, code=1)
    header.set_xyzt_units("mm", "sec")
    header.set_data_offset(_NIFTI1_OFFSET)
    return header.binaryblock + b"\x00" * (_NIFTI1_OFFSET - len(header.binaryblock))


@functools.lru_cache(maxsize=8)
def _zero_piece(n_bytes: int) -> bytes:
    """Deflated ``n_bytes`` zero bytes as a non-final, byte-aligned piece (computed once)."""
    return _deflate_piece(bytes(n_bytes))


@functools.lru_cache(maxsize=8)
def _zeros_crc_columns(n_bytes: int) -> tuple[int, tuple[int, ...]]:
    """CRC-32 over ``n_bytes`` zeros as a function of the CRC before them: it is affine over
    GF(2), ``crc32(zeros, c) = crc32(zeros, 0) ^ L(c)``; returns ``crc32(zeros, 0)`` and the 32
    columns ``L(1 << bit)``."""
    zeros = bytes(n_bytes)
    base = zlib.crc32(zeros)
    return base, tuple(zlib.crc32(zeros, 1 << bit) ^ base for bit in range(32))


def crc32_zeros(n_bytes: int, crc: int = 0) -> int:
    """``zlib.crc32(bytes(n_bytes), crc)`` without reading the zeros (after the first call)."""
    value, columns = _zeros_crc_columns(n_bytes)
    for bit in range(32):
        if crc >> bit & 1:
            value ^= columns[bit]
    return value


def _deflate_piece(data: Any) -> bytes:
    """``data`` deflated on its own (no reference to earlier bytes), ending byte-aligned with a
    non-final block (``Z_SYNC_FLUSH``): such pieces concatenate into one deflate stream."""
    compressor = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def canonical_mask_bytes(data: np.ndarray, affine: np.ndarray) -> bytes:
    """The stored NIfTI of a mask: uint8 0/1 (non-zero -> 1), sform = qform = ``affine``
    (code 1), no extensions, gzip with mtime 0 (:func:`canonical_header` + deflated voxels).

    The voxels are deflated in pieces of :data:`_PIECE_BYTES`; a piece of zeros (nearly all of
    a mask) is neither compressed nor read again (its deflated bytes and its effect on the CRC
    are cached), so a mask costs what its lesions' pieces cost. Equal masks give equal bytes.
    """
    arr = np.asarray(data)
    voxels = arr.view(np.uint8) if arr.dtype == np.bool_ else (arr != 0).view(np.uint8)
    flat = np.ravel(voxels, order="F")  # NIfTI's order; a view when the array is Fortran (uploads are)
    header = canonical_header(arr.shape, affine)
    n_full = flat.size // _PIECE_BYTES
    used = np.zeros(n_full + 1, dtype=bool)
    used[:n_full] = flat[: n_full * _PIECE_BYTES].reshape(n_full, _PIECE_BYTES).any(axis=1)
    used[n_full] = bool(flat[n_full * _PIECE_BYTES :].any())
    pieces = [_GZIP_HEADER, _deflate_piece(header)]
    crc = zlib.crc32(header)
    for index, nonzero in enumerate(used.tolist()):
        chunk = flat[index * _PIECE_BYTES : (index + 1) * _PIECE_BYTES]
        if chunk.size == 0:
            continue
        if nonzero:
            pieces.append(_deflate_piece(chunk))
            crc = zlib.crc32(chunk, crc)
        else:
            pieces.append(_zero_piece(chunk.size))
            crc = crc32_zeros(chunk.size, crc)
    size = len(header) + flat.size
    pieces.append(_FINAL_BLOCK + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(pieces)


def _fmt_affine(a: np.ndarray) -> str:
    rows = np.asarray(a, dtype=np.float64)[:3]
    return "[" + ", ".join("[" + ", ".join(f"{v:.3f}" for v in row) + "]" for row in rows) + "]"


def _check_values(values: np.ndarray) -> None:
    """Refuse NaN, infinite, negative, > 255 or fractional values (``values``: the non-zero ones)."""
    if values.dtype.kind == "f":
        n_nan = int(np.isnan(values).sum())
        n_inf = int(np.isinf(values).sum())
        if n_nan or n_inf:
            raise _fail(f"mask contains non-finite values ({n_nan} NaN, {n_inf} infinite)")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lo < 0:
        raise _fail(f"mask values must be 0..255 (0 = background); found negative values (min {lo:g})")
    if hi > 255:
        raise _fail(f"mask values must be 0..255 (0 = background); found values up to {hi:g}")
    if values.dtype.kind == "f" and not bool(np.all(np.mod(values, 1) == 0)):
        raise _fail("mask values must be whole numbers 0..255; found fractional values")


def _binarise(data: np.ndarray) -> np.ndarray:
    """Check the values and return ``data != 0`` (bool, same layout): one pass over the volume,
    then the checks on the non-zero values alone (a mask's few lesion voxels).

    Zero is always valid, and every value a refusal names (NaN, negative, > 255, fractional) is
    non-zero, so the checks and their messages are those of the whole volume. uint8 needs no
    check: every value 1..255 is a pen value.
    """
    order = "C" if data.flags.c_contiguous else "F"
    flat = np.ravel(data, order=order)  # a view when the block is contiguous (uploads: Fortran)
    nonzero = flat != 0
    if not (data.dtype.kind == "u" and data.dtype.itemsize == 1):
        _check_values(flat[nonzero])
    return nonzero.reshape(data.shape, order=order)


def _gunzip(content: bytes, size: int) -> bytes:
    """The first ``size`` bytes of a gzip stream (several members allowed), decompressed once;
    fewer if the stream is shorter. Raises one of :data:`_INFLATE_ERRORS` on a corrupt stream."""
    parts: list[bytes] = []
    have = 0
    rest = content
    while have < size and rest:
        inflater = _inflate.decompressobj(31)
        part = inflater.decompress(rest, size - have)
        parts.append(part)
        have += len(part)
        if not inflater.eof:
            break  # stopped at ``size`` bytes, or the stream is truncated
        rest = inflater.unused_data
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_data(mask_bytes: bytes, image: nib.Nifti1Image, declared: nifti.DeclaredData, compressed: bool) -> np.ndarray:
    """The upload's voxels (scaled as the header says), decompressing the upload once."""
    end = declared.offset + declared.n_bytes
    try:
        raw = _gunzip(mask_bytes, end) if compressed else mask_bytes
    except _INFLATE_ERRORS as exc:
        raise _fail(f"the mask's data cannot be read (truncated or corrupt file): {exc}") from exc
    if len(raw) < end:
        raise _fail(
            "the mask's data cannot be read (truncated or corrupt file): "
            f"{declared.describe()}, but the file holds only {max(len(raw) - declared.offset, 0):,} "
            f"of its {declared.n_bytes:,} bytes of data"
        )
    slope, inter = float(image.dataobj.slope), float(image.dataobj.inter)
    if slope == 1.0 and inter == 0.0:
        flat = np.frombuffer(raw, dtype=declared.dtype, count=declared.n_voxels, offset=declared.offset)
        return flat.reshape(declared.shape, order="F")
    # Scaled values: nibabel's own scaling rules, on the bytes already decompressed.
    proxy = nib.arrayproxy.ArrayProxy(io.BytesIO(raw), (declared.shape, declared.dtype, declared.offset, slope, inter))
    return np.asanyarray(proxy)


def validate_mask(mask_bytes: bytes, *, shape: Sequence[int], affine: np.ndarray) -> CanonicalMask:
    """Check an uploaded mask against the T2* grid and return its canonical stored form.

    The header is checked first (format, declared size, dimensions, shape, data type, affine);
    only then is the data decompressed, once, in memory.

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
        values, values negative, above 255 or fractional, data shorter than declared.
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
    try:
        with nifti.open_nifti_bytes(mask_bytes) as (image, _fmt, compressed):
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
    except ValidationFailed as exc:
        if exc.field in (None, "file"):  # nifti's messages name the generic "file" field
            raise _fail(exc.message) from exc
        raise
    data = _read_data(mask_bytes, image, declared, compressed)
    binary = _binarise(data).view(np.uint8)
    binary.flags.writeable = False
    content = canonical_mask_bytes(binary, ref_affine)
    return CanonicalMask(
        data=binary,
        affine=ref_affine,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )
