"""Benchmark the BIDS derivatives export (issue 18): time, peak memory and size of a study's
dataset written as a zip, the way the download button and ``manage.py export_study --zip`` do.

Run from the project root::

    .venv/bin/python benchmarks/export.py                      # 14 sessions at 384x384x90
    .venv/bin/python benchmarks/export.py --sessions 3 --size 128x128x48

Each session holds a QSM map (float32 ppm: smooth tissue contrast plus noise, as a reconstructed
map compresses), a consensus lesion label map (20 lesions) and a reference ROI map, and 25 rows of
the lesion table, written by :func:`qsmreview.exports.bids.write_dataset` (the writer the service
calls after reading the stored series). Timed: the whole write including the zip, wall clock;
peak memory from ``tracemalloc``. Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def matrix_size(text: str) -> tuple[int, int, int]:
    parts = tuple(int(v) for v in text.lower().split("x"))
    if len(parts) != 3 or min(parts) < 8:
        raise argparse.ArgumentTypeError("NXxNYxNZ, each at least 8")
    return parts  # type: ignore[return-value]


def make_session(shape: tuple[int, int, int], index: int, rng: np.random.Generator):
    from qsmreview.exports.bids import LabelVolume, SessionExport, Volume

    affine = np.diag([180.0 / shape[0], 180.0 / shape[1], 90.0 / shape[2], 1.0])
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    inside = x**2 + y**2 + z**2 < 0.8
    qsm = np.where(inside, 0.02 * np.sin(6 * x) * np.cos(5 * y) - 0.03 * (x**2 + y**2 < 0.3), 0).astype(np.float32)
    qsm[inside] += rng.normal(0, 0.01, int(inside.sum())).astype(np.float32)
    lesions = np.zeros(shape, np.int16)
    reference = np.zeros(shape, np.int16)
    rows = []
    for k in range(1, 21):
        c = [int(rng.integers(n // 4, 3 * n // 4)) for n in shape]
        box = tuple(slice(v - 2, v + 3) for v in c)
        lesions[box] = k
        ring = tuple(slice(v - 5, v + 6) for v in c[:2]) + (slice(c[2], c[2] + 1),)
        reference[ring] = np.where(lesions[ring] == 0, 10 * k + 1, reference[ring])
        rows.append({"lesion": k, "lesion_type": "wm", "portion": "wm", "relative_susceptibility_ppm": 0.01})
    sub = f"MS{index:03d}"
    return SessionExport(
        subject=sub,
        session="01",
        chimap=Volume(qsm, affine, {"Units": "ppm"}),
        lesions=LabelVolume(lesions, affine, labels={k: f"lesion {k} (wm)" for k in range(1, 21)}),
        reference=LabelVolume(reference, affine, labels={10 * k + 1: f"reference of lesion {k}" for k in range(1, 21)}),
        lesion_rows=[{**r, "subject": sub} for r in rows],
    )


def main(argv: list[str] | None = None) -> int:
    from qsmreview.exports.bids import DatasetExport, write_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=matrix_size, default=(384, 384, 90), help="NXxNYxNZ (default 384x384x90)")
    parser.add_argument("--sessions", type=int, default=14, help="sessions (default 14, the reference study)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    sessions = [make_session(args.size, i + 1, rng) for i in range(args.sessions)]
    print(f"{args.sessions} sessions at {'x'.join(map(str, args.size))}: built in {time.perf_counter() - t0:.1f} s "
          f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)", flush=True)
    dataset = DatasetExport(name="benchmark", sessions=sessions, generated_by={"Name": "qsmreview"})
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "benchmark-bids.zip"
        tracemalloc.start()
        t0 = time.perf_counter()
        report = write_dataset(dataset, target, as_zip=True)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = target.stat().st_size
    print(f"zip written in {seconds:.1f} s ({seconds / args.sessions:.2f} s per session): {size / 2**20:.1f} MiB, "
          f"{len(report.files)} files; peak memory allocated while writing (tracemalloc) {peak / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
