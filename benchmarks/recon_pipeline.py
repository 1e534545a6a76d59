"""Benchmark the QSM pipeline on the synthetic 7T phantom: time, memory, FFTs, solver agreement.

Run from the project root::

    .venv/bin/python benchmarks/recon_pipeline.py                 # 3 sizes, both solvers
    .venv/bin/python benchmarks/recon_pipeline.py --quick         # smallest size only
    .venv/bin/python benchmarks/recon_pipeline.py --sizes 384x384x90 --no-toolbox

Every size keeps the field of view of the 384 x 384 x 90, 0.47 x 0.47 x 1 mm slab (180 x 180 x
90 mm), so the voxel size grows as the matrix shrinks. For each size the phantom is built once in
a child process and saved to a temporary directory; then each solver runs the full pipeline
(:func:`recon.pipeline.qsm`) in its own child process, which reports its wall time, per-stage
times, FFT count and peak resident memory (``ru_maxrss`` of that process, so the solvers do not
contaminate each other's figure). The parent prints the figures, the toolbox / ADMM time ratio
and their agreement: NRMSE between the two maps in the eroded mask (mean removed) and the largest
per-lesion difference of relative susceptibility (:func:`recon.metrics.relative_susceptibility`).

Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.grid import matrix_size  # noqa: E402

FULL_SHAPE = (384, 384, 90)
FULL_VOXEL = (0.47, 0.47, 1.0)
DEFAULT_SIZES = "192x192x45,288x288x68,384x384x90"


def _voxel_for(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(round(f * v / n, 4) for f, v, n in zip(FULL_SHAPE, FULL_VOXEL, shape))  # type: ignore[return-value]


def _rss_gb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _child_make(shape: tuple[int, int, int], path: Path) -> None:
    from recon.phantom import make_phantom

    t0 = time.perf_counter()
    ph = make_phantom(shape, _voxel_for(shape))
    np.savez(
        path,
        magnitude=ph.magnitude,
        phase=ph.phase,
        te=np.asarray(ph.te),
        b0=ph.b0,
        voxel_size=np.asarray(ph.voxel_size),
        affine=ph.affine,
        lesions=ph.lesions,
        tissue=ph.tissue,
        chi=ph.chi_ppm,
    )
    print(json.dumps({"phantom_s": time.perf_counter() - t0}))


def _child_run(data: Path, solver: str, out: Path) -> None:
    from recon.pipeline import qsm

    d = np.load(data)
    inputs = {k: d[k] for k in ("magnitude", "phase", "te", "affine", "voxel_size")}
    b0 = float(d["b0"])
    baseline = _rss_gb()
    t0 = time.perf_counter()
    res = qsm(
        inputs["magnitude"],
        inputs["phase"],
        tuple(float(t) for t in inputs["te"]),
        b0,
        tuple(float(v) for v in inputs["voxel_size"]),
        affine=inputs["affine"],
        solver=solver,
    )
    wall = time.perf_counter() - t0
    np.savez(out, chi=res.chi_ppm, eroded=res.eroded_mask)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "timings": res.timings,
                "fft_counts": res.fft_counts,
                "medi_iterations": res.parameters.get("medi_iterations"),
                "medi_converged": res.parameters.get("medi_converged"),
                "peak_rss_gb": _rss_gb(),
                "baseline_rss_gb": baseline,
            }
        )
    )


def _spawn(*args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _agreement(a_path: Path, b_path: Path, data: Path) -> tuple[float, float]:
    from recon.metrics import nrmse, relative_susceptibility

    a, b, d = np.load(a_path), np.load(b_path), np.load(data)
    mask = a["eroded"] & b["eroded"]
    err = nrmse(a["chi"], b["chi"], mask, demean=True)
    ra = relative_susceptibility(a["chi"], d["lesions"], d["tissue"], mask=mask)
    rb = relative_susceptibility(b["chi"], d["lesions"], d["tissue"], mask=mask)
    common = set(ra) & set(rb)
    worst = max((abs(ra[k] - rb[k]) for k in common), default=float("nan"))
    return float(err), float(worst)


def _stage_line(r: dict) -> str:
    t = r["timings"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
    return (
        f"wall {r['wall_s']:6.1f} s  [{stages}]  FFTs {r['fft_counts'].get('inversion', 0):5d}  "
        f"MEDI iterations {r['medi_iterations']} (converged {r['medi_converged']})  "
        f"peak RSS {r['peak_rss_gb']:.2f} GB (inputs loaded: {r['baseline_rss_gb']:.2f} GB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated NXxNYxNZ (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help="only the smallest size")
    parser.add_argument("--no-toolbox", action="store_true", help="skip the toolbox solver")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        if kind == "make":
            _child_make(matrix_size(rest[0]), Path(rest[1]))
        else:
            _child_run(Path(rest[0]), rest[1], Path(rest[2]))
        return 0

    try:
        sizes = [matrix_size(s) for s in args.sizes.split(",")]
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--sizes: {exc}")
    if args.quick:
        sizes = sizes[:1]
    print(f"cores: {os.cpu_count()}  python {sys.version.split()[0]}  numpy {np.__version__}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qsm-bench-") as tmp:
        for shape in sizes:
            tag = "x".join(map(str, shape))
            data = Path(tmp) / f"phantom-{tag}.npz"
            made = _spawn("make", tag, str(data))
            print(f"\n== {tag} voxels {_voxel_for(shape)} mm  (phantom built in {made['phantom_s']:.1f} s)")
            results = {}
            for solver in ("admm",) if args.no_toolbox else ("admm", "toolbox"):
                out = Path(tmp) / f"chi-{tag}-{solver}.npz"
                results[solver] = _spawn("run", str(data), solver, str(out))
                print(f"  {solver:8s} {_stage_line(results[solver])}", flush=True)
            row = {"size": tag, "n_voxels": int(np.prod(shape)), **{f"{k}_wall_s": v["wall_s"] for k, v in results.items()}}
            row["admm_inversion_s"] = results["admm"]["timings"]["inversion"]
            row["admm_peak_gb"] = results["admm"]["peak_rss_gb"]
            if "toolbox" in results:
                ratio = results["toolbox"]["timings"]["inversion"] / results["admm"]["timings"]["inversion"]
                err, worst = _agreement(Path(tmp) / f"chi-{tag}-admm.npz", Path(tmp) / f"chi-{tag}-toolbox.npz", data)
                print(
                    f"  toolbox/admm inversion time ratio {ratio:.1f}x;  agreement: NRMSE {err:.3f} in the eroded "
                    f"mask, max per-lesion relative-susceptibility difference {worst:.4f} ppm"
                )
                row.update(ratio=ratio, nrmse=err, max_lesion_diff_ppm=worst)
            rows.append(row)
        print("\n== scaling (default solver)")
        print(f"  {'size':>12s} {'voxels':>10s} {'wall s':>8s} {'MEDI s':>8s} {'peak GB':>8s}")
        for r in rows:
            print(
                f"  {r['size']:>12s} {r['n_voxels']:>10d} {r['admm_wall_s']:>8.1f} {r['admm_inversion_s']:>8.1f} "
                f"{r['admm_peak_gb']:>8.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
