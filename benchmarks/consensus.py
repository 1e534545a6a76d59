"""Benchmark the lesion analysis of one session (issue 17: <= 2 s at 384 x 384 x 90, 50 lesions,
three raters, on 2 cores).

Run from the project root::

    .venv/bin/python benchmarks/consensus.py                          # 384x384x90; 10, 50, 200 lesions
    .venv/bin/python benchmarks/consensus.py --size 96x96x24 --lesions 5 10 --repeats 1

A synthetic head on the T2* grid (0.47 x 0.47 x 1 mm at full size, the same 180 x 180 x 90 mm
field of view at any size): FSL FAST labels (an ellipsoidal brain: white matter inside a 4 mm
cortical ribbon, small ventricles, CSF around), white matter, cortical and mixed lesions (balls of
1.5-3 mm radius, about 3 : 1 : 1), three raters' masks and votes from
:func:`qsmreview.lesions.synthetic.synthetic_ratings`, a QSM map (WM -0.03 ppm, GM +0.02, WM
lesions +0.03, cortical -0.02, Gaussian noise 0.01 ppm) and an eroded brain mask. Timed (wall
clock, best and median of ``--repeats``): :func:`qsmreview.lesions.pipeline.analyse_session`
without the vessel proposals, its stages (the target covers consensus, classification, reference
ROIs and measurements; agreement is printed beside them), then the vessel proposals on their
own, then each rater's own lesions (``per_rater``, what the consensus job adds for the statistics'
rater filter, issue 18). Peak memory is what ``tracemalloc`` saw allocated during one analysis (numpy reports its
arrays to it), on top of the inputs. Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.grid import matrix_size  # noqa: E402

FOV_MM = (180.0, 180.0, 90.0)
TARGET_S = 2.0
CSF, GM, WM = 1, 2, 3


def make_session(shape: tuple[int, int, int], n_lesions: int, *, seed: int = 0) -> dict[str, Any]:
    """The synthetic session described in the module docstring."""
    from qsmreview.lesions.synthetic import synthetic_ratings

    rng = np.random.default_rng(seed)
    vs = tuple(f / n for f, n in zip(FOV_MM, shape))
    mm = [((np.arange(n) - (n - 1) / 2) * v).reshape([-1 if a == i else 1 for a in range(3)]) for i, (n, v) in enumerate(zip(shape, vs))]
    semi = (78.0, 78.0, 38.0)
    rho = np.sqrt(sum((c / s) ** 2 for c, s in zip(mm, semi))).astype(np.float32)
    tissue = np.zeros(shape, np.uint8)
    tissue[rho <= 1.06] = CSF
    ribbon = 4.0 / semi[0]
    tissue[rho <= 1.0] = GM
    tissue[rho <= 1.0 - ribbon] = WM
    vent = sum(((c - o) / s) ** 2 for c, o, s in zip(mm, (0.0, 0.0, 6.0), (8.0, 25.0, 8.0))) <= 1
    tissue[vent] = CSF
    brain = tissue > 0

    truth = np.zeros(shape, np.int16)
    types: dict[int, str] = {}
    kinds = (["wm"] * 3 + ["cortical", "mixed"]) * (n_lesions // 5 + 1)
    centres: list[np.ndarray] = []
    attempts = 0
    while len(types) < n_lesions and attempts < 200 * n_lesions:
        attempts += 1
        kind = kinds[len(types)]
        r = float(rng.uniform(1.5, 2.2)) if kind == "cortical" else float(rng.uniform(2.0, 3.0))
        target = {"wm": rng.uniform(0.25, 1.0 - ribbon - (r + 2) / semi[0]), "cortical": 1.0 - ribbon / 2,
                  "mixed": 1.0 - ribbon}[kind]
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        c_mm = direction * np.asarray(semi) * target
        c = np.round(c_mm / np.asarray(vs) + (np.asarray(shape) - 1) / 2).astype(int)
        if any(np.linalg.norm((c - o) * vs) < 2 * 3.0 + 6.0 for o in centres):
            continue
        lo = [max(int(ci - r / v) - 1, 0) for ci, v in zip(c, vs)]
        hi = [min(int(ci + r / v) + 2, n) for ci, v, n in zip(c, vs, shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        local = np.ix_(*[np.arange(a, b) for a, b in zip(lo, hi)])
        ball = sum(((g - c[i]) * vs[i]) ** 2 for i, g in enumerate(local)) <= r * r
        ball = ball & (tissue[box] >= GM) & ~vent[box]
        if ball.sum() < 4 or vent[box].any():
            continue
        lid = len(types) + 1
        truth[box][ball] = lid
        codes = tissue[box][ball]
        frac = float((codes == GM).mean())
        types[lid] = "cortical" if frac >= 0.75 else "wm" if frac <= 0.25 else "mixed"
        centres.append(c)
    ratings = synthetic_ratings(truth, types, allowed=(tissue == WM), seed=seed)
    masks = {r.rater: r.mask for r in ratings}
    votes = {r.rater: [(les.anchor_voxel, les.vote) for les in r.lesions] for r in ratings}
    qsm = np.where(tissue == GM, 0.02, np.where(tissue == WM, -0.03, 0.0)).astype(np.float32)
    qsm[(truth > 0) & (tissue == WM)] += 0.03
    qsm[(truth > 0) & (tissue == GM)] -= 0.02
    qsm += rng.normal(0.0, 0.01, shape).astype(np.float32)
    from scipy import ndimage

    qsm_mask = ndimage.binary_erosion(brain, iterations=2)
    qsm[~qsm_mask] = 0.0
    return {"masks": masks, "tissue": tissue, "voxel_size": vs, "qsm": qsm, "qsm_mask": qsm_mask, "votes": votes,
            "n_lesions": len(types)}


def measure(session: dict[str, Any], repeats: int) -> dict[str, Any]:
    from qsmreview.lesions.pipeline import analyse_session

    kwargs = {k: session[k] for k in ("tissue", "voxel_size", "qsm", "qsm_mask", "votes")}
    analyse_session(session["masks"], **kwargs, propose_vessels=False)  # warm-up: imports, caches
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = analyse_session(session["masks"], **kwargs, propose_vessels=False)
        runs.append((time.perf_counter() - t0, a.timings))
    tracemalloc.start()
    analyse_session(session["masks"], **kwargs, propose_vessels=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    with_vessels = analyse_session(session["masks"], **kwargs, propose_vessels=True)
    vessel_wall = time.perf_counter() - t0
    raters = [analyse_session(session["masks"], **kwargs, propose_vessels=False, per_rater=True) for _ in range(repeats)]
    core_stages = ("validate", "consensus", "classify", "reference", "measure")
    core = [sum(t[s] for s in core_stages) for _, t in runs]
    stages = {s: statistics.median(t[s] for _, t in runs) for s in (*core_stages, "agreement")}
    return {
        "lesions_counted": sum(c["status"] == "lesion" for c in a.candidates),
        "candidates": len(a.candidates),
        "rows": len(a.rows),
        "wall_best": min(w for w, _ in runs),
        "wall_median": statistics.median(w for w, _ in runs),
        "core_best": min(core),
        "core_median": statistics.median(core),
        "stages": stages,
        "peak_mib": peak / 2**20,
        "vessels_s": with_vessels.timings.get("vessels", float("nan")),
        "vessels_wall": vessel_wall,
        "raters_s": statistics.median(r.timings["raters"] for r in raters),
        "rater_rows": sum(len(rows) for rows in raters[0].rater_rows.values()),
        "vessel_voxels": int(with_vessels.vessel_proposals.sum()) if with_vessels.vessel_proposals is not None else 0,
    }


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1 / 5 / 15 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=matrix_size, default=(384, 384, 90), help="NXxNYxNZ (default 384x384x90)")
    parser.add_argument("--lesions", type=int, nargs="+", default=[10, 50, 200], help="lesion counts (default 10 50 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per count (default 5)")
    args = parser.parse_args(argv)
    shape = tuple(args.size)
    vs = tuple(f / n for f, n in zip(FOV_MM, shape))
    print(f"load average {_load()} on {os.cpu_count()} cores")
    print(f"grid {'x'.join(map(str, shape))} ({', '.join(f'{v:.3g}' for v in vs)} mm), 3 raters; "
          f"target <= {TARGET_S:.0f} s for consensus + classification + ROIs + measurements", flush=True)
    for n in args.lesions:
        t0 = time.perf_counter()
        session = make_session(shape, n)
        setup = time.perf_counter() - t0
        r = measure(session, args.repeats)
        st = r["stages"]
        print(
            f"{session['n_lesions']} lesions placed ({r['candidates']} candidates, {r['lesions_counted']} counted, "
            f"{r['rows']} table rows; setup {setup:.1f} s): core best {r['core_best']:.2f} s, median "
            f"{r['core_median']:.2f} s; analyse_session without vessels best {r['wall_best']:.2f} s, median "
            f"{r['wall_median']:.2f} s"
        )
        print(
            "  stages (median): " + ", ".join(f"{k} {v:.3f} s" for k, v in st.items())
            + f"; vessel proposals {r['vessels_s']:.2f} s ({r['vessel_voxels']} voxels)"
        )
        print(f"  each rater's own lesions (per_rater, median): {r['raters_s']:.3f} s for {r['rater_rows']} rows")
        print(f"  peak memory allocated during one analysis (tracemalloc): {r['peak_mib']:.0f} MiB", flush=True)
    print(f"load average {_load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
