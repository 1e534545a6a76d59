"""How fast, and in how much memory, an upload that declares a huge volume is refused.

Run from the project root::

    .venv/bin/python benchmarks/upload_limits.py            # the issue's two inputs, real gzip
    .venv/bin/python benchmarks/upload_limits.py --small    # header + 1 kB payload (a quick check)

The inputs are those of issue 15 point 7: a ``.nii.gz`` of zeros declaring a 23,170 x 23,170
float32 slice (2 GiB unpacked, ~2 MB packed) and an int16 phase of 512 x 512 x 1024 (0.5 GiB,
~0.5 MB packed). Each is written as a real gzip stream of the zeros its header declares (streamed,
a few seconds each), then handed to :func:`qsmreview.studies.nifti.validate_nifti`, the check every
upload goes through, with the default limits (``QSMREVIEW_MAX_VOXELS``,
``QSMREVIEW_MAX_UNPACKED_BYTES``). Printed per input: packed size, time to refuse, peak memory
allocated during the check (tracemalloc, which counts NumPy's buffers) and the message. It prints
figures; it is not a test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INPUTS = {
    "23170 x 23170 float32 slice": ((23170, 23170, 1), np.float32, "magnitude"),
    "512 x 512 x 1024 int16 phase": ((512, 512, 1024), np.int16, "phase"),
}
_CHUNK = 16 << 20


def write_declaring(path: Path, shape: tuple[int, ...], dtype: type, *, payload_bytes: int | None) -> Path:
    """A gzip NIfTI-1 whose header declares ``shape`` x ``dtype``, followed by zeros.

    ``payload_bytes=None`` writes every byte the header declares (streamed in chunks); a number
    writes only that many.
    """
    image = nib.Nifti1Image(np.zeros((1, 1, 1), dtype), np.diag([0.5, 0.5, 1.0, 1.0]))
    header = image.header
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = header.template_dtype.itemsize + 4
    total = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    left = total if payload_bytes is None else payload_bytes
    zeros = bytes(min(_CHUNK, max(left, 1)))
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(header.binaryblock + b"\0" * 4)
        while left > 0:
            n = min(left, len(zeros))
            out.write(zeros[:n])
            left -= n
    return path


def refuse(path: Path, kind: str, echo_times_s: list[float] | None) -> tuple[float, float, str]:
    """(seconds, peak MiB allocated, message) of validating ``path``."""
    from qsmreview.errors import ValidationFailed
    from qsmreview.studies.nifti import validate_nifti

    tracemalloc.start()
    started = time.perf_counter()
    try:
        validate_nifti(path, kind=kind, echo_times_s=echo_times_s)
        message = "ACCEPTED"
    except ValidationFailed as exc:
        message = exc.message
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="header + 1 kB of data instead of every declared byte")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qsmreview.settings")
    os.environ.setdefault("QSMREVIEW_DEMO", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    print(
        f"limits: QSMREVIEW_MAX_VOXELS {settings.QSMREVIEW_MAX_VOXELS:,}, "
        f"QSMREVIEW_MAX_UNPACKED_BYTES {settings.QSMREVIEW_MAX_UNPACKED_BYTES:,}"
    )
    print(f"{'input':<30} {'packed':>10} {'written in':>10} {'refused in':>11} {'peak alloc':>11}  message")
    with tempfile.TemporaryDirectory(prefix="qsmreview-limits-") as tmp:
        for name, (shape, dtype, role) in INPUTS.items():
            path = Path(tmp) / f"{role}.nii.gz"
            t0 = time.perf_counter()
            write_declaring(path, shape, dtype, payload_bytes=1000 if args.small else None)
            written = time.perf_counter() - t0
            kind, tes = ("t2star_phase", [0.02]) if role == "phase" else ("t2star_mag", None)
            seconds, peak_mib, message = refuse(path, kind, tes)
            packed = path.stat().st_size / 2**20
            print(
                f"{name:<30} {packed:>8.2f} MB {written:>8.1f} s {1000 * seconds:>8.1f} ms "
                f"{peak_mib:>7.2f} MiB  {message}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
