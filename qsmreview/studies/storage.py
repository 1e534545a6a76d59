"""Moving series files between Django's storage and local files, and their checksums.

Stored files are reached only through the storage API (``series.file.storage``): local disk by
default, an S3 bucket by a settings change. Code that needs a path for nibabel asks
:func:`series_local_path`, which gives the stored file itself when the storage is local and a
temporary copy otherwise.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import nibabel as nib
import numpy as np
from django.core.files import File
from django.core.files.storage import Storage

from qsmreview.studies.models import Series

CHUNK_BYTES = 1024 * 1024


def sha256_of_stream(stream: BinaryIO) -> tuple[str, int]:
    """sha256 (hex) and size in bytes of a binary stream, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_of_path(path: Path | str) -> tuple[str, int]:
    """sha256 (hex) and size in bytes of a local file, streamed."""
    with open(path, "rb") as fh:
        return sha256_of_stream(fh)


def sha256_of_stored(series: Series) -> tuple[str, int]:
    """sha256 and size of a series' stored file as the storage returns it (to verify integrity)."""
    with series.file.storage.open(series.file.name, "rb") as fh:
        return sha256_of_stream(fh)


def nifti_suffix(name: str) -> str:
    return ".nii.gz" if name.lower().endswith(".gz") else ".nii"


def storage_delete_quietly(storage: Storage, name: str | None) -> None:
    """Delete ``name`` if given, ignoring failure: used while another error is being raised, which
    matters more than a failed clean-up (the orphan sweep removes what is left)."""
    if name:
        try:
            storage.delete(name)
        except Exception:
            pass


def storage_save_path(storage: Storage, path: Path | str, name: str) -> str:
    """Stream a local file into the storage under ``name``; return the name actually used."""
    with open(path, "rb") as fh:
        return storage.save(name, File(fh, name=Path(name).name))


def _local_path_of(storage: Storage, name: str) -> Path | None:
    try:
        return Path(storage.path(name))
    except NotImplementedError:  # remote storage (S3, ...)
        return None


@contextmanager
def series_local_path(series: Series) -> Iterator[Path]:
    """A local path to the series' file, for nibabel, valid inside the ``with`` block.

    With local storage this is the stored file itself: read it, never write to it. With remote
    storage the file is streamed to a temporary file that is removed on exit. The path always
    ends in ``.nii`` or ``.nii.gz`` so that nibabel recognises it.
    """
    storage = series.file.storage
    name = series.file.name
    local = _local_path_of(storage, name)
    if local is not None and local.name.lower().endswith((".nii", ".nii.gz")):
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="qsmreview-series-") as tmp:
        dest = Path(tmp) / f"series-{series.pk}{nifti_suffix(name)}"
        with storage.open(name, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK_BYTES)
        yield dest


def series_load(series: Series) -> nib.Nifti1Image:
    """The series as a nibabel image whose data are in memory (safe after the file is gone).

    For large volumes prefer :func:`series_local_path` and nibabel's lazy proxy.
    """
    with series_local_path(series) as path:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        return image.__class__(data, image.affine, image.header)
