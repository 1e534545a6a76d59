"""Validation of NIfTI volumes before they become series.

:func:`validate_nifti` checks one file on its own (format, dimensions, geometry, values) and
:func:`check_same_grid` compares two grids; neither touches the database. The service
(:mod:`qsmreview.studies.services.series`) decides which grid a series is compared with.

The checks run cheapest first, and nothing reads the image data until every header check has
passed: the header (format, voxel size), then the size the header declares against
``QSMREVIEW_MAX_VOXELS`` and ``QSMREVIEW_MAX_UNPACKED_BYTES`` (a 2 MB ``.nii.gz`` may declare
gigabytes of zeros) and against what an uncompressed file holds, then dimensions, echo times, data
type and geometry, and only then the values. Values are checked slab by slab through nibabel's
array proxy, so even a volume at the limits is never loaded whole. The format is recognised from
the file's bytes, not its name: an upload lives in a temporary file whose name says nothing
reliable (``tmpab12.upload.gz``).
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from django.conf import settings

from qsmreview.errors import ValidationFailed
from qsmreview.studies.models import SeriesKind
from qsmreview.studies.uploads import human_bytes
from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine
from recon.phase import phase_to_radians

#: Kinds that may be 4-D, with echoes on axis 3.
ECHO_KINDS = frozenset({SeriesKind.T2STAR_MAGNITUDE, SeriesKind.T2STAR_PHASE})
#: Kinds whose values must be whole numbers from a fixed set.
LABEL_VALUES: dict[str, frozenset[int]] = {
    SeriesKind.BRAIN_MASK: frozenset({0, 1}),
    SeriesKind.LESION_MASK: frozenset({0, 1}),
    # FSL FAST codes: 0 background, 1 CSF, 2 GM, 3 WM.
    SeriesKind.TISSUE: frozenset({0, 1, 2, 3}),
}
#: Accepted voxel edge lengths (mm).
VOXEL_SIZE_RANGE_MM = (0.05, 10.0)
#: Largest echo time accepted (s); larger values are almost certainly milliseconds.
MAX_ECHO_TIME_S = 1.0
#: Two grids are the same when their affines agree to this many mm.
GRID_TOLERANCE_MM = 1e-3

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_REPORTED_VALUES = 12
#: Chunk in which a gzip stream is counted when its data turns out short (bytes).
_COUNT_CHUNK = 1 << 20
#: Most voxels read at once when values are scanned (4 Mi: 32 MiB once scaled to float64), so
#: memory stays bounded whatever the shape, even for one huge slice.
_SLAB_VOXELS = 1 << 22


@dataclass(frozen=True)
class NiftiInfo:
    """What validation learnt about a file.

    Attributes
    ----------
    format : "NIfTI-1" or "NIfTI-2".
    compressed : whether the file is gzip-compressed (.nii.gz).
    shape : full array shape, (X, Y, Z) or (X, Y, Z, n_echoes).
    voxel_size_mm : edge lengths along the three array axes (mm).
    affine : (4, 4) float64 voxel-to-world (RAS, mm).
    dtype : on-disk data type (after scaling, e.g. "int16" or "float32").
    n_echoes : 1 for a 3-D volume, else ``shape[3]``.
    value_range : (min, max) of the finite values (scaled).
    integer_valued : whether every value is a whole number.
    phase_conversion : for phase, "radians" or the description of the unit conversion needed
        (see :func:`recon.phase.phase_to_radians`); None for other kinds.
    b0_direction : unit B0 direction in voxel coordinates (world z through the affine).
    """

    format: str
    compressed: bool
    shape: tuple[int, ...]
    voxel_size_mm: tuple[float, float, float]
    affine: np.ndarray = field(repr=False)
    dtype: str
    n_echoes: int
    value_range: tuple[float, float]
    integer_valued: bool
    phase_conversion: str | None = None
    b0_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return (self.shape[0], self.shape[1], self.shape[2])

    @property
    def needs_phase_conversion(self) -> bool:
        return self.phase_conversion not in (None, "radians")


def _fail(message: str, field_name: str = "file") -> ValidationFailed:
    return ValidationFailed(message, field=field_name)


# --- format ----------------------------------------------------------------------------------


def _open_raw(path: Path) -> tuple[io.BufferedIOBase, bool]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb"), True  # type: ignore[return-value]
    return open(path, "rb"), False


def _sniff_format(header: bytes) -> str:
    """'NIfTI-1' or 'NIfTI-2' from the first 540 bytes, or raise with what the file looks like."""
    if len(header) >= 4:
        for endian in "<>":
            (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
            if sizeof_hdr == 348 and len(header) >= 348:
                magic = header[344:348]
                if magic == b"n+1\x00":
                    return "NIfTI-1"
                if magic == b"ni1\x00":
                    raise _fail(
                        "this is the header of a NIfTI-1 pair (.hdr/.img); upload a single-file "
                        "NIfTI (.nii or .nii.gz), e.g. converted with nibabel or fslchfiletype"
                    )
                raise _fail(
                    "this is an Analyze 7.5 image, not NIfTI: convert it to NIfTI-1 "
                    "(.nii or .nii.gz) so that its orientation is unambiguous"
                )
            if sizeof_hdr == 540 and len(header) >= 540:
                if header[4:8] == b"n+2\x00":
                    return "NIfTI-2"
                raise _fail("this is the header of a NIfTI-2 pair; upload a single-file NIfTI")
    raise _fail("not a NIfTI file: upload a NIfTI-1 or NIfTI-2 volume (.nii or .nii.gz)")


def _check_raw_pixdim(klass: type, head: bytes) -> None:
    """Refuse a zero or non-finite voxel size in the header as written.

    nibabel silently replaces a zero pixdim by 1 mm when it reads a header; a volume whose voxel
    size is unknown must not become a series with a made-up one.
    """
    size = klass.header_class.template_dtype.itemsize
    try:
        raw = klass.header_class(head[:size], check=False)
        pixdim = np.asarray(raw["pixdim"], dtype=np.float64)[1:4]
        ndim = int(raw["dim"][0])
    except Exception as exc:
        raise _fail(f"not a readable NIfTI header: {exc}") from exc
    used = pixdim[: max(0, min(ndim, 3))]
    if not np.all(np.isfinite(used)) or np.any(used == 0):
        shown = tuple(float(v) for v in pixdim)
        raise _fail(
            f"degenerate geometry: voxel size {shown} mm in the header (pixdim); "
            "a voxel size of 0 or NaN is not a valid geometry"
        )


def _read_image(fh: io.BufferedIOBase) -> tuple[nib.Nifti1Image | nib.Nifti2Image, str]:
    """The image (header read, data left in ``fh``) and its format, or raise what it looks like."""
    try:
        head = fh.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(f"not a readable NIfTI file: corrupt gzip stream ({exc})") from exc
    fmt = _sniff_format(head)
    klass = nib.Nifti1Image if fmt == "NIfTI-1" else nib.Nifti2Image
    _check_raw_pixdim(klass, head)
    fh.seek(0)
    try:
        image = klass.from_stream(fh)
    except Exception as exc:  # nibabel raises many types on a broken header
        raise _fail(f"not a readable {fmt} file: {exc}") from exc
    return image, fmt


@contextmanager
def open_nifti(path: Path | str) -> Iterator[tuple[nib.Nifti1Image | nib.Nifti2Image, str, bool]]:
    """Open a single-file NIfTI-1/2 image (plain or gzip) whatever its file name.

    Yields ``(image, format, compressed)``; the image's data proxy reads from the open file, so
    use it inside the ``with`` block only.

    Raises
    ------
    ValidationFailed
        Not a readable single-file NIfTI (text, Analyze, NIfTI pair, truncated or corrupt gzip).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(f"file {path.name} does not exist")
    fh, compressed = _open_raw(path)
    try:
        image, fmt = _read_image(fh)
        yield image, fmt, compressed
    finally:
        fh.close()


@contextmanager
def open_nifti_bytes(content: bytes) -> Iterator[tuple[nib.Nifti1Image | nib.Nifti2Image, str, bool]]:
    """:func:`open_nifti` for a file held in memory (e.g. a small upload): no temporary file.

    Only the header is decompressed here; the image's data proxy reads from a stream over
    ``content`` inside the ``with`` block.
    """
    raw = io.BytesIO(content)
    compressed = content[:2] == _GZIP_MAGIC
    fh: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
    try:
        image, fmt = _read_image(fh)
        yield image, fmt, compressed
    finally:
        fh.close()


# --- declared size ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredData:
    """The data block a header declares, from the header alone.

    Attributes
    ----------
    shape : the array shape of the header's ``dim``.
    dtype : the on-disk data type.
    offset : byte offset of the data in the (uncompressed) file (``vox_offset``).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int

    @property
    def n_voxels(self) -> int:
        n = 1
        for d in self.shape:  # Python ints: 30000**3 * 8 must not overflow
            n *= max(int(d), 0)
        return n

    @property
    def n_bytes(self) -> int:
        return self.n_voxels * self.dtype.itemsize

    def describe(self) -> str:
        shape = " x ".join(str(d) for d in self.shape)
        return (
            f"the header declares {shape} {self.dtype} = {self.n_voxels:,} voxels "
            f"({human_bytes(self.n_bytes)} unpacked)"
        )


def voxel_limit() -> int:
    """``settings.QSMREVIEW_MAX_VOXELS``: the most voxels (all echoes) a volume may declare."""
    return int(settings.QSMREVIEW_MAX_VOXELS)


def unpacked_bytes_limit() -> int:
    """``settings.QSMREVIEW_MAX_UNPACKED_BYTES``: the largest uncompressed data block accepted."""
    return int(settings.QSMREVIEW_MAX_UNPACKED_BYTES)


def check_declared_size(
    declared: DeclaredData, *, max_voxels: int | None = None, max_unpacked_bytes: int | None = None
) -> None:
    """Refuse a volume whose header declares more voxels or bytes than the limits allow.

    Uses the header only, so a small compressed file declaring a huge volume is refused in
    microseconds, before anything is decompressed.

    Parameters
    ----------
    declared : what the header declares.
    max_voxels, max_unpacked_bytes : the limits; default the settings ``QSMREVIEW_MAX_VOXELS``
        and ``QSMREVIEW_MAX_UNPACKED_BYTES``.

    Raises
    ------
    ValidationFailed
        Naming the declared shape, data type, voxel count and size, and the limit passed.
    """
    voxels = voxel_limit() if max_voxels is None else max_voxels
    byte_limit = unpacked_bytes_limit() if max_unpacked_bytes is None else max_unpacked_bytes
    if declared.n_voxels > voxels:
        raise _fail(
            f"volume too large: {declared.describe()}, more than the limit of {voxels:,} "
            "voxels (QSMREVIEW_MAX_VOXELS)"
        )
    if declared.n_bytes > byte_limit:
        raise _fail(
            f"volume too large: {declared.describe()}, more than the limit of "
            f"{human_bytes(byte_limit)} ({byte_limit:,} bytes, QSMREVIEW_MAX_UNPACKED_BYTES)"
        )


def declared_data(image: nib.Nifti1Image | nib.Nifti2Image) -> DeclaredData:
    """What an opened image's header declares (no data is read)."""
    header = image.header
    return DeclaredData(
        shape=tuple(int(n) for n in header.get_data_shape()),
        dtype=np.dtype(header.get_data_dtype()),
        # The proxy keeps the file's vox_offset; the image's own header copy resets it to 0.
        offset=int(getattr(image.dataobj, "offset", header.get_data_offset())),
    )


def _short_data_message(declared: DeclaredData, held: int) -> str:
    return (
        f"{declared.describe()}, but the file holds only {max(held, 0):,} of its "
        f"{declared.n_bytes:,} bytes of data: truncated or corrupt file, or a wrong header"
    )


def _check_data_present(path: Path, declared: DeclaredData, compressed: bool) -> None:
    """Refuse an uncompressed file shorter than its header's data block (compressed: see below).

    A gzip stream's uncompressed length is unknown without decompressing it; a short one is
    caught when the values are read (:func:`_unreadable_data_message`).
    """
    if compressed:
        return
    held = path.stat().st_size - declared.offset
    if held < declared.n_bytes:
        raise _fail(_short_data_message(declared, held))


def _gzip_length(path: Path, stop_after: int) -> tuple[int, bool]:
    """(uncompressed bytes counted, whether the stream read cleanly), reading at most
    ``stop_after`` bytes, a chunk at a time."""
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while total <= stop_after:
                chunk = fh.read(_COUNT_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
    except (OSError, EOFError, zlib.error):
        return total, False
    return total, True


def _unreadable_data_message(
    path: Path, declared: DeclaredData, compressed: bool, exc: BaseException
) -> str:
    """Say why the data could not be read: fewer bytes than declared, or a corrupt stream."""
    if compressed:
        length, clean = _gzip_length(path, declared.offset + declared.n_bytes)
    else:
        length, clean = path.stat().st_size, True
    held = length - declared.offset
    if held < declared.n_bytes:
        message = _short_data_message(declared, held)
        return message if clean else message + f" ({exc})"
    return f"the image data cannot be read (truncated or corrupt file): {exc}"


# --- the checks ------------------------------------------------------------------------------


def _check_echo_times(echo_times_s: Sequence[float] | None, kind: str, n_echoes: int) -> None:
    if echo_times_s is None or len(echo_times_s) == 0:
        if kind == SeriesKind.T2STAR_PHASE:
            raise _fail(
                f"a phase series needs its echo time(s) in seconds ({n_echoes} for this image)",
                "echo_times_s",
            )
        return
    tes = [float(t) for t in echo_times_s]
    if not all(np.isfinite(t) and t > 0 for t in tes):
        raise _fail(f"echo times must be positive seconds, got {tes}", "echo_times_s")
    if max(tes) > MAX_ECHO_TIME_S:
        raise _fail(
            f"echo times must be in seconds, got {tes} (milliseconds? 20 ms is 0.02)",
            "echo_times_s",
        )
    if len(tes) != n_echoes:
        raise _fail(
            f"{len(tes)} echo time(s) given but the image has {n_echoes} echo(es) "
            f"(4th dimension)",
            "echo_times_s",
        )


def _check_dimensions(shape: tuple[int, ...], kind: str) -> int:
    """Return the number of echoes."""
    ndim = len(shape)
    if ndim < 3:
        raise _fail(f"image is {ndim}-D (shape {shape}); a series must be a 3-D volume")
    if ndim > 4:
        raise _fail(f"image is {ndim}-D (shape {shape}); at most 4-D (echoes on axis 3) is accepted")
    if ndim == 4 and kind not in ECHO_KINDS:
        raise _fail(
            f"image is 4-D (shape {shape}); only multi-echo T2* magnitude and phase may be 4-D, "
            f"a {SeriesKind(kind).label} must be 3-D"
        )
    if min(shape) < 1:
        raise _fail(f"image has an empty dimension (shape {shape})")
    return shape[3] if ndim == 4 else 1


def _check_geometry(affine: np.ndarray) -> tuple[float, float, float]:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise _fail("the image's affine is not a finite 4x4 matrix")
    lo, hi = VOXEL_SIZE_RANGE_MM
    try:
        vs = voxel_size_from_affine(a)
    except ReconInputError as exc:
        raise _fail(f"degenerate geometry: {exc}") from exc
    if not all(lo <= v <= hi for v in vs):
        raise _fail(
            f"voxel size {tuple(round(v, 4) for v in vs)} mm is outside [{lo}, {hi}] mm: "
            "check the header's pixdim / affine"
        )
    det = abs(float(np.linalg.det(a[:3, :3])))
    if det < 1e-6 * float(np.prod(vs)):
        raise _fail("degenerate geometry: the affine's axes are (nearly) parallel")
    return vs


@dataclass
class _Stats:
    lo: float = np.inf
    hi: float = -np.inf
    n_nan: int = 0
    n_inf: int = 0
    integer_valued: bool = True
    values: set[float] = field(default_factory=set)

    def add(self, slab: np.ndarray, *, track_values: bool) -> None:
        finite = np.isfinite(slab)
        if not finite.all():
            self.n_nan += int(np.isnan(slab).sum())
            self.n_inf += int(np.isinf(slab).sum())
            slab = slab[finite]
        if slab.size == 0:
            return
        self.lo = min(self.lo, float(slab.min()))
        self.hi = max(self.hi, float(slab.max()))
        if self.integer_valued and np.issubdtype(slab.dtype, np.floating):
            self.integer_valued = bool(np.all(np.mod(slab, 1) == 0))
        if track_values and len(self.values) <= _MAX_REPORTED_VALUES:
            self.values.update(float(v) for v in np.unique(slab)[: _MAX_REPORTED_VALUES + 1])


def _scan_values(
    image: nib.Nifti1Image, *, track_values: bool, path: Path, declared: DeclaredData, compressed: bool
) -> _Stats:
    """Min, max, non-finite counts and (optionally) distinct values, a slab at a time.

    A slab is a z slice, or a band of rows of it when the slice has more than ``_SLAB_VOXELS``
    voxels. Slabs are read in on-disk order (echo by echo, z by z, y by y) so a gzip stream is
    never rewound.
    A read that fails (nibabel's "Whoops, not enough data in file") is explained in words: how
    much data the header declares and how much the file holds.
    """
    stats = _Stats()
    proxy = image.dataobj
    shape = image.shape
    n_echoes = shape[3] if len(shape) == 4 else 1
    rows = max(1, _SLAB_VOXELS // max(shape[0], 1))
    try:
        for e in range(n_echoes):
            for k in range(shape[2]):
                for j in range(0, shape[1], rows):
                    band = slice(j, min(j + rows, shape[1]))
                    index = (slice(None), band, k, e) if len(shape) == 4 else (slice(None), band, k)
                    stats.add(np.asanyarray(proxy[index]), track_values=track_values)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise _fail(_unreadable_data_message(path, declared, compressed, exc)) from exc
    return stats


def _fmt_values(values: set[float]) -> str:
    shown = sorted(values)[:_MAX_REPORTED_VALUES]
    text = ", ".join(f"{v:g}" for v in shown)
    return text + (", ..." if len(values) > _MAX_REPORTED_VALUES else "")


def _check_values(stats: _Stats, kind: str) -> str | None:
    """Check value rules by kind; return the phase conversion for phase, else None."""
    if stats.n_nan or stats.n_inf:
        raise _fail(
            f"image contains non-finite values ({stats.n_nan} NaN, {stats.n_inf} infinite): "
            "replace them (e.g. by 0) before uploading"
        )
    if stats.lo > stats.hi:  # no finite value at all: impossible after the check above
        raise _fail("image holds no values")
    if kind == SeriesKind.T2STAR_PHASE:
        try:
            _, conversion = phase_to_radians(np.array([stats.lo, stats.hi], dtype=np.float64))
        except ReconInputError as exc:
            raise _fail(f"phase: {exc}") from exc
        if conversion != "radians" and not stats.integer_valued:
            raise _fail(
                f"phase: phase values span [{stats.lo:g}, {stats.hi:g}] and are not whole "
                "numbers: neither radians within [-pi, pi] nor a scaled integer phase"
            )
        return conversion
    allowed = LABEL_VALUES.get(kind)
    if allowed is not None:
        what = SeriesKind(kind).label.lower()
        if not stats.integer_valued:
            raise _fail(f"{what} must be integer-valued; found values such as {_fmt_values(stats.values)}")
        extra = {v for v in stats.values if v not in allowed}
        if extra:
            if kind == SeriesKind.TISSUE:
                raise _fail(
                    "tissue labels must be FSL FAST codes 0-3 (0 background, 1 CSF, 2 GM, 3 WM); "
                    f"found {_fmt_values(stats.values)}"
                )
            raise _fail(f"{what} must be binary (0/1); found values {_fmt_values(stats.values)}")
    return None


def validate_nifti(
    path: Path | str,
    *,
    kind: str,
    echo_times_s: Sequence[float] | None = None,
    max_voxels: int | None = None,
    max_unpacked_bytes: int | None = None,
    check_grid: Callable[[tuple[int, ...], np.ndarray], None] | None = None,
) -> NiftiInfo:
    """Check that a file can become a series of ``kind``; return what was learnt about it.

    Every header check runs before any image data is read (see the module docstring).

    Parameters
    ----------
    path : path of a single-file NIfTI-1 or NIfTI-2 (plain or gzip; the name does not matter).
    kind : a :class:`~qsmreview.studies.models.SeriesKind` value.
    echo_times_s : echo times in seconds, one per echo (axis 3). Required for phase.
    max_voxels, max_unpacked_bytes : size limits on what the header declares; default the
        settings ``QSMREVIEW_MAX_VOXELS`` and ``QSMREVIEW_MAX_UNPACKED_BYTES``.
    check_grid : called with ``(shape, affine)`` after the header checks and before any value is
        read; raises :class:`ValidationFailed` to refuse (the service's grid rule, so a volume on
        the wrong grid is refused without scanning it).

    Returns
    -------
    NiftiInfo

    Raises
    ------
    ValidationFailed
        With a message saying what is wrong: not NIfTI (text, Analyze, truncated gzip), a
        declared volume over the voxel or unpacked-size limit, less data in the file than the
        header declares, fewer than 3 or more than 4 dimensions, 4-D for a kind without echoes, echo-time count not
        matching axis 3, voxel size outside 0.05-10 mm or a degenerate affine, NaN or infinite
        values, phase neither in radians nor a recognised scaled integer phase, a mask not
        binary or tissue labels outside FSL FAST's {0, 1, 2, 3}.
    """
    try:
        kind = SeriesKind(kind)
    except ValueError as exc:
        raise _fail(f"unknown series kind {kind!r}", "kind") from exc
    path = Path(path)
    with open_nifti(path) as (image, fmt, compressed):
        # Header only, cheapest first; no image data is read before the value scan.
        declared = declared_data(image)
        check_declared_size(declared, max_voxels=max_voxels, max_unpacked_bytes=max_unpacked_bytes)
        _check_data_present(path, declared, compressed)
        shape = declared.shape
        n_echoes = _check_dimensions(shape, kind)
        _check_echo_times(echo_times_s, kind, n_echoes)
        dtype = declared.dtype
        if dtype.names is not None or dtype.kind not in "biuf":
            raise _fail(f"data type {dtype} is not a real number type (complex or RGB?)")
        affine = np.asarray(image.affine, dtype=np.float64)
        voxel_size = _check_geometry(affine)
        if check_grid is not None:
            check_grid(shape, affine)
        stats = _scan_values(
            image, track_values=kind in LABEL_VALUES, path=path, declared=declared, compressed=compressed
        )
        conversion = _check_values(stats, kind)
        scaled_dtype = np.asanyarray(image.dataobj[(0,) * len(shape)]).dtype
    return NiftiInfo(
        format=fmt,
        compressed=compressed,
        shape=shape,
        voxel_size_mm=voxel_size,
        affine=affine,
        dtype=str(scaled_dtype),
        n_echoes=n_echoes,
        value_range=(stats.lo, stats.hi),
        integer_valued=stats.integer_valued,
        phase_conversion=conversion,
        b0_direction=b0_direction_from_affine(affine),
    )


def load_phase_radians(path: Path | str, expected_conversion: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a validated scaled-integer phase whole and convert it to float32 radians.

    Returns ``(radians, affine)``. Used only when a conversion is needed (the data must then be
    rewritten anyway).
    """
    with open_nifti(path) as (image, _, _):
        data = np.asanyarray(image.dataobj)
        affine = np.asarray(image.affine, dtype=np.float64)
    try:
        radians, conversion = phase_to_radians(data)
    except ReconInputError as exc:
        raise _fail(f"phase: {exc}") from exc
    if conversion != expected_conversion:  # the slab-wise scan and the whole array disagree
        raise _fail(f"phase: unit recognised as {conversion!r}, expected {expected_conversion!r}")
    return radians.astype(np.float32, copy=False), affine


def _fmt_affine(a: np.ndarray) -> str:
    text = np.array2string(
        np.asarray(a, dtype=np.float64)[:3], precision=3, suppress_small=True, separator=", ", max_line_width=10_000
    )
    return " ".join(text.split())


def same_grid(
    shape: Sequence[int], affine: np.ndarray, ref_shape: Sequence[int], ref_affine: np.ndarray
) -> bool:
    """Whether two volumes share a grid: same spatial shape and affines within 1e-3 mm."""
    return tuple(shape[:3]) == tuple(ref_shape[:3]) and bool(
        np.allclose(
            np.asarray(affine, dtype=np.float64),
            np.asarray(ref_affine, dtype=np.float64),
            rtol=0.0,
            atol=GRID_TOLERANCE_MM,
        )
    )


def check_same_grid(
    shape: Sequence[int],
    affine: np.ndarray,
    ref_shape: Sequence[int],
    ref_affine: np.ndarray,
    *,
    what: str,
    reference: str,
) -> None:
    """Raise :class:`ValidationFailed` unless the two grids are the same (see :func:`same_grid`)."""
    if tuple(shape[:3]) != tuple(ref_shape[:3]):
        raise _fail(
            f"{what} is not on the grid of {reference}: shape {tuple(shape[:3])} vs "
            f"{tuple(ref_shape[:3])}"
        )
    if not same_grid(shape, affine, ref_shape, ref_affine):
        raise _fail(
            f"{what} is not on the grid of {reference}: affine {_fmt_affine(affine)} vs "
            f"{_fmt_affine(ref_affine)} (tolerance {GRID_TOLERANCE_MM} mm)"
        )
