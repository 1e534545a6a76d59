"""Tiny NIfTI files whose header declares a volume far larger than the bytes that follow.

The issue's inputs were a 2 MB ``.nii.gz`` (gigabytes of zeros) declaring 23,170 x 23,170 float32
and a 0.5 MB int16 phase of 512 x 512 x 1024; for a test the header alone (plus a few bytes) is
enough, since a correct validator refuses them before reading any data.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.fixtures.nifti import AFFINE

#: The two inputs of issue #15 point 7, and point 9's 30000^3 header.
SLICE_23170 = ((23170, 23170, 1), np.float32)
PHASE_512_1024 = ((512, 512, 1024), np.int16)
CUBE_30000 = ((30000, 30000, 30000), np.float32)


def declaring(
    path: Path,
    shape: tuple[int, ...],
    dtype: type | np.dtype = np.float32,
    *,
    payload: bytes = b"\0" * 1000,
    nifti2: bool = False,
) -> Path:
    """Write a NIfTI header declaring ``shape`` x ``dtype`` followed by ``payload`` only.

    ``.gz`` in the name means gzip. The header is otherwise valid (0.5 x 0.5 x 1 mm, qform and
    sform set), so only the declared size is wrong.
    """
    klass = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    image = klass(np.zeros((1, 1, 1), dtype), AFFINE)
    header = image.header
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    size = header.template_dtype.itemsize
    header["vox_offset"] = size + 4  # header, then the 4-byte extension flag, then the data
    raw = header.binaryblock + b"\0" * 4 + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)
    return path
