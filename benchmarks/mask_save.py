"""Benchmark the server's save of one mask revision (issue 16: <= 100 ms median at 384 x 384 x 90).

Run from the project root::

    .venv/bin/python benchmarks/mask_save.py                    # 384 x 384 x 90, 25 saves
    .venv/bin/python benchmarks/mask_save.py --size 48x48x16 --saves 3

A throw-away SQLite database and media folder in a temporary directory hold one session with a
T2* magnitude (3 echoes, int16) assigned to a rater. The rater's mask is a typical one: five
ellipsoidal lesions of 4-7 mm diameter (a few hundred voxels each at 0.47 x 0.47 x 1 mm), uploaded
as the workspace sends it (NiiVue's uint8 NIfTI, gzip level 6 as ``CompressionStream`` makes it).
Each save goes through :func:`qsmreview.annotations.services.revision_create` from the latest
revision with every lesion anchored, as the browser does. Printed: median / p90 / min / max time
of a save (wall clock, and the median CPU time of the process, which the load of other processes
on the machine inflates less), the peak memory allocated during one save (``tracemalloc``),
the upload's and the stored file's sizes, and the time of the save's steps on their own
(validation + canonical file, lesion table). Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.grid import matrix_size  # noqa: E402

FULL_VOXEL_MM = (0.47, 0.47, 1.0)
ECHO_TIMES_S = (0.006, 0.012, 0.018)
TARGET_SAVE_MS = 100.0


def grid_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel to world (mm): 0.47 x 0.47 x 1 mm voxels, the grid centred on the origin."""
    affine = np.diag([*FULL_VOXEL_MM, 1.0])
    affine[:3, 3] = [-(n - 1) * v / 2 for n, v in zip(shape, FULL_VOXEL_MM)]
    return affine


def typical_mask(shape: tuple[int, int, int], *, n: int = 5, seed: int = 1) -> np.ndarray:
    """``n`` ellipsoidal lesions of 4-7 mm diameter (in mm, so a few hundred voxels each on the
    full grid), away from one another, pen values 1 (uint8, as NiiVue draws)."""
    rng = np.random.default_rng(seed)
    voxel = np.asarray(FULL_VOXEL_MM)
    grid = np.indices(shape, sparse=True)
    mask = np.zeros(shape, np.uint8)
    for k in range(n):
        # Centres spread along x so the lesions never touch: n separate components.
        centre = [(k + 0.5) / n * shape[0], rng.uniform(0.35, 0.65) * shape[1], rng.uniform(0.35, 0.65) * shape[2]]
        radius_vox = np.maximum(rng.uniform(2.0, 3.5) / voxel, 0.6)
        radius_vox[0] = min(radius_vox[0], 0.45 * shape[0] / n)
        mask[sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius_vox)) <= 1] = 1
    return mask


def mask_upload(mask: np.ndarray, affine: np.ndarray) -> bytes:
    """The mask as the workspace uploads it: NiiVue's uncompressed NIfTI, gzip level 6."""
    import nibabel as nib

    return gzip.compress(nib.Nifti1Image(mask, affine).to_bytes(), compresslevel=6, mtime=0)


def _setup_django(workdir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="qsmreview.test_settings",
        QSMREVIEW_VAR_DIR=str(workdir / "var"),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_assignment(shape: tuple[int, int, int]) -> Any:
    """A study, a session with a T2* magnitude on ``shape`` and its assignment to a rater."""
    from django.contrib.auth import get_user_model

    from qsmreview.access import system
    from qsmreview.annotations.services import assignment_create
    from qsmreview.studies.models import Membership, Session, Study, Subject
    from qsmreview.studies.services.series import series_create_derived

    users = get_user_model().objects
    admin = users.create_user("bench_admin", password="bench-pw")
    rater = users.create_user("bench_rater", password="bench-pw")
    study = Study.objects.create(name="Mask save benchmark", field_strength_t=7.0)
    Membership.objects.create(study=study, user=admin, role="admin")
    Membership.objects.create(study=study, user=rater, role="rater")
    subject = Subject.objects.create(study=study, code="B01")
    session = Session.objects.create(subject=subject, label="01", field_strength_t=7.0)
    magnitude = np.full((*shape, len(ECHO_TIMES_S)), 1000, np.int16)
    series_create_derived(
        by=system("benchmark"), session=session, kind="t2star_mag", data=magnitude, affine=grid_affine(shape),
        echo_times_s=list(ECHO_TIMES_S), b0_t=7.0, provenance={"source": "benchmarks/mask_save.py"},
    )
    return assignment_create(by=admin, session=session, rater=rater)


def _save(assignment: Any, upload: bytes) -> tuple[Any, float, float]:
    """One save from the latest revision with every lesion anchored; (revision, wall and CPU
    seconds spent in ``revision_create`` alone)."""
    from qsmreview.annotations.services import revision_create

    latest = assignment.latest_revision
    anchors = [
        {"number": les["number"], "anchor_mm": les["anchor_mm"], "vote": "wm", "confidence": 3, "note": ""}
        for les in (latest.lesions if latest else [])
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    revision = revision_create(
        by=assignment.rater, assignment=assignment, mask_bytes=upload, parent=latest, lesions=anchors,
        active_seconds=5.0,
    )
    return revision, time.perf_counter() - t0, time.process_time() - c0


def measure(shape: tuple[int, int, int], saves: int) -> dict[str, Any]:
    """Time ``saves`` saves (after one untimed warm-up), then one more under ``tracemalloc``."""
    from qsmreview.annotations.masks import validate_mask
    from qsmreview.lesions.components import lesion_table

    assignment = make_assignment(shape)
    affine = grid_affine(shape)
    mask = typical_mask(shape)
    upload = mask_upload(mask, affine)
    revision, _, _ = _save(assignment, upload)  # warm-up: imports, first queries, cached constants
    times, cpu = [], []
    for _ in range(saves):
        revision, seconds, cpu_seconds = _save(assignment, upload)
        times.append(seconds)
        cpu.append(cpu_seconds)
    tracemalloc.start()
    _save(assignment, upload)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    def best_of(fn: Any, n: int = 5) -> float:
        spent = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t0)
        return 1000 * min(spent)

    magnitude_affine = np.asarray(assignment.session.series.get(kind="t2star_mag").affine)
    canonical = validate_mask(upload, shape=shape, affine=magnitude_affine)
    ms = sorted(1000 * t for t in times)
    return {
        "saves": saves,
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, int(np.ceil(0.9 * len(ms))) - 1)],
        "cpu_median_ms": 1000 * statistics.median(cpu),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "peak_mib": peak / 2**20,
        "upload_bytes": len(upload),
        "uncompressed_bytes": 352 + mask.size,
        "stored_bytes": revision.size_bytes,
        "lesions": [les["voxels"] for les in revision.lesions],
        "validate_ms": best_of(lambda: validate_mask(upload, shape=shape, affine=magnitude_affine)),
        "table_ms": best_of(
            lambda: lesion_table(canonical.data, canonical.affine, anchors=[], min_diameter_mm=3.0, next_number=1)
        ),
    }


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1 / 5 / 15 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=matrix_size, default=(384, 384, 90), help="NXxNYxNZ (default 384x384x90)")
    parser.add_argument("--saves", type=int, default=25, help="saves timed (default 25)")
    args = parser.parse_args(argv)
    shape = tuple(args.size)

    with tempfile.TemporaryDirectory(prefix="qsmreview-mask-save-") as tmp:
        _setup_django(Path(tmp))
        print(f"load average {_load()} on {os.cpu_count()} cores")
        r = measure(shape, args.saves)
        print(f"grid {'x'.join(map(str, shape))} ({FULL_VOXEL_MM} mm); {len(r['lesions'])} lesions of "
              f"{', '.join(map(str, r['lesions']))} voxels")
        print(
            f"save one mask revision (revision_create, {r['saves']} saves): median {r['median_ms']:.1f} ms, "
            f"p90 {r['p90_ms']:.1f} ms (min {r['min_ms']:.1f}, max {r['max_ms']:.1f}; "
            f"target <= {TARGET_SAVE_MS:.0f} ms); CPU time median {r['cpu_median_ms']:.1f} ms"
        )
        print(f"peak memory allocated during one save (tracemalloc): {r['peak_mib']:.1f} MiB")
        print(
            f"upload {r['upload_bytes']:,} bytes ({r['upload_bytes'] / 1024:.1f} KiB gzip level 6 of "
            f"{r['uncompressed_bytes'] / 2**20:.1f} MiB); stored file {r['stored_bytes']:,} bytes "
            f"({r['stored_bytes'] / 1024:.1f} KiB)"
        )
        print(f"steps alone (best of 5): validate + canonical file {r['validate_ms']:.1f} ms, "
              f"lesion table {r['table_ms']:.1f} ms")
        print(f"load average {_load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
