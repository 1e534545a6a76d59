"""The display volume of a series, computed once and kept in the storage next to the series.

A display volume (:mod:`qsmreview.studies.display`) depends only on the series' file, so it is
keyed by the file's SHA-256 and the conversion's version: ``display/<sha256>-v1.nii``. The first
request computes it (about a second for a 384 x 384 x 90 x 3 magnitude) and stores it; later ones
read it back. A cached file is checked before it is served (its exact size and a NIfTI-1 header
with the series' shape, uint8, no extensions); one that fails, or is missing, is computed again.
Local storage is written atomically (a temporary file in the same directory, then a rename);
an object store (S3) publishes an object whole.

Access is the caller's business (the API view reads the series through
:func:`qsmreview.access.series_visible_to`); nothing here checks rights or touches the database.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from qsmreview.errors import Gone, ValidationFailed
from qsmreview.studies.display import (
    DISPLAY_VERSION,
    NIFTI1_DATA_OFFSET,
    combine_echoes,
    display_nifti_bytes,
    display_nifti_size,
    display_volume,
)
from qsmreview.studies.models import Series, SeriesKind
from qsmreview.studies.nifti import open_nifti
from qsmreview.studies.storage import series_local_path

#: Storage prefix of the cached display volumes (not under the series' prefix: the orphan sweep
#: of :mod:`qsmreview.studies.services.orphans` walks only that one).
DISPLAY_STORAGE_PREFIX = "display"

log = logging.getLogger(__name__)


def _combination(series: Series) -> str:
    """How a 4-D series becomes 3-D: "rss" for a magnitude, "echo1" for anything else (phase:
    a sum of squares of phases means nothing); "" for a 3-D series."""
    if len(series.shape) < 4 or int(series.shape[3]) == 1:
        return ""
    return "rss" if series.kind == SeriesKind.T2STAR_MAGNITUDE else "echo1"


def _key(series: Series) -> str:
    suffix = "-echo1" if _combination(series) == "echo1" else ""
    return f"{series.sha256}-v{DISPLAY_VERSION}{suffix}"


def display_cache_name(series: Series) -> str:
    """Storage name of the series' cached display volume, e.g. ``display/3b0c...-v1.nii``."""
    return f"{DISPLAY_STORAGE_PREFIX}/{_key(series)}.nii"


def display_etag(series: Series) -> str:
    """The display's entity tag (without quotes): ``display-v1-<sha256>`` (``-echo1-`` for a
    4-D phase). It changes with the series' file and with the conversion's version."""
    if _combination(series) == "echo1":
        return f"display-v{DISPLAY_VERSION}-echo1-{series.sha256}"
    return f"display-v{DISPLAY_VERSION}-{series.sha256}"


def display_size(series: Series) -> int:
    """Size in bytes of the series' display volume, from the row alone (HEAD needs no file)."""
    return display_nifti_size(tuple(series.shape))


def _valid(data: bytes, series: Series) -> bool:
    """Whether ``data`` is a whole display volume for ``series`` (size and header)."""
    if len(data) != display_size(series):
        return False
    try:
        header = nib.Nifti1Header(data[:348], check=True)
    except Exception:  # noqa: BLE001 - any unreadable header is a bad cache entry
        return False
    return (
        header.get_data_shape() == tuple(int(n) for n in series.shape[:3])
        and header.get_data_dtype() == np.uint8
        and int(header["vox_offset"]) == NIFTI1_DATA_OFFSET
        and data[348:352] == b"\0\0\0\0"
        and bool(np.all(np.isfinite([header["scl_slope"], header["scl_inter"]])))
    )


def _read_cache(storage: Storage, name: str, series: Series) -> bytes | None:
    try:
        with storage.open(name, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, OSError):
        return None
    if _valid(data, series):
        return data
    log.warning("series %s: cached display %s is damaged; computing it again", series.pk, name)
    return None


def _write_cache(storage: Storage, name: str, data: bytes) -> None:
    """Store ``data`` under ``name`` so that no reader ever sees a partial file."""
    try:
        final = Path(storage.path(name))
    except NotImplementedError:  # remote storage: an object appears whole when its upload ends
        if storage.exists(name):
            storage.delete(name)
        storage.save(name, ContentFile(data))
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        mode = getattr(storage, "file_permissions_mode", None)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, final)  # atomic on one file system
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _compute(series: Series) -> bytes:
    try:
        with series_local_path(series) as path, open_nifti(path) as (image, _, _):
            combination = _combination(series)
            if combination == "echo1":
                data = np.asanyarray(image.dataobj[..., 0])
            else:
                data = np.asanyarray(image.dataobj)
                if data.ndim == 4:
                    data = data[..., 0] if data.shape[3] == 1 else combine_echoes(data)
            header = image.header
            shown = display_volume(data)
    except (FileNotFoundError, OSError, ValidationFailed) as exc:
        log.error("series %s: stored file %s cannot be read: %s", series.pk, series.file.name, exc)
        raise Gone(
            f"the volume of series {series.pk} is missing from storage or unreadable; "
            "ask the study's admins to restore it (or upload it again)"
        ) from exc
    n_echoes = int(series.shape[3]) if len(series.shape) > 3 else 1
    description = {
        "rss": f"qsmreview display v{DISPLAY_VERSION}: RSS of {n_echoes} echoes",
        "echo1": f"qsmreview display v{DISPLAY_VERSION}: echo 1 of {n_echoes}",
    }.get(combination, f"qsmreview display v{DISPLAY_VERSION}")
    return display_nifti_bytes(shown, header, description=description)


def series_display_bytes(series: Series) -> bytes:
    """The series' display volume as uncompressed NIfTI-1 bytes (cached; computed when needed).

    Raises
    ------
    Gone
        The series' stored file is missing or unreadable and no display was cached.
    """
    storage = series.file.storage
    name = display_cache_name(series)
    cached = _read_cache(storage, name, series)
    if cached is not None:
        return cached
    data = _compute(series)
    try:
        _write_cache(storage, name, data)
    except OSError as exc:  # a full or read-only disk costs the next request a recomputation
        log.error("series %s: cannot cache its display volume as %s: %s", series.pk, name, exc)
    return data
