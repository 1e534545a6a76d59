"""Benchmark the group statistics (issue 18: the analysis of 10,000 lesions in 500 patients <= 0.2 s).

Run from the project root::

    .venv/bin/python benchmarks/stats.py                          # 10,000 lesions, 500 patients, 9 runs
    .venv/bin/python benchmarks/stats.py --lesions 500 --patients 25 --runs 3

A seeded synthetic table: lesions spread over the patients at random (every patient has at least
one), 80 % WM, 15 % cortical and 5 % mixed lesions (two rows each: WM and cortical portion), 1 % of
rows without a value, values drawn around the reference study's means with a patient effect. It is
written to a temporary CSV once. Printed: the time to read and validate the table
(:func:`qsmreview.stats.table.read_table`) and the time of the analysis alone
(:func:`qsmreview.stats.analysis.analyse` on the validated table), median / min / max of ``--runs``
runs after one warm-up (wall clock, and the median CPU time of the process, which other processes
on the machine inflate less); the mixed model's share (:func:`qsmreview.stats.mixedmodel.fit_mixed_model`
on the same values, timed alone); the text and JSON rendering; the peak memory allocated during one
analysis (``tracemalloc``, a separate run because tracing slows it). Figures only: nothing here is
a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qsmreview.stats.analysis import analyse  # noqa: E402
from qsmreview.stats.mixedmodel import fit_mixed_model  # noqa: E402
from qsmreview.stats.report import render_json, render_text  # noqa: E402
from qsmreview.stats.table import LesionRow, format_table, read_table  # noqa: E402

TARGET_ANALYSIS_S = 0.2
MEANS_PPM = {"wm": 0.014, "cortical": -0.018, "mixed_wm": 0.014, "mixed_cortical": -0.009}


def synthetic_rows(lesions: int, patients: int, *, seed: int = 0) -> list[LesionRow]:
    """``lesions`` lesions over ``patients`` patients (each at least one), as table rows."""
    if lesions < patients:
        raise ValueError("need at least one lesion per patient")
    rng = np.random.default_rng(seed)
    owner = np.concatenate([np.arange(patients), rng.integers(0, patients, lesions - patients)])
    kind = rng.choice(["wm", "cortical", "mixed"], size=lesions, p=[0.80, 0.15, 0.05])
    effect = rng.normal(0, 0.006, patients)
    rows: list[LesionRow] = []
    for i in np.argsort(owner, kind="stable"):
        subject = f"P{owner[i]:04d}"
        portions = ("wm", "cortical") if kind[i] == "mixed" else (str(kind[i]),)
        for portion in portions:
            key = f"mixed_{portion}" if kind[i] == "mixed" else portion
            value = MEANS_PPM[key] + effect[owner[i]] + rng.normal(0, 0.013)
            rows.append(LesionRow(subject, str(i + 1), str(kind[i]), portion,
                                  None if rng.random() < 0.01 else float(value)))
    return rows


def timed(call: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of ``runs`` calls after one warm-up call."""
    call()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def line(name: str, times: tuple[list[float], list[float]]) -> str:
    ms, cpu = [1000 * t for t in times[0]], [1000 * t for t in times[1]]
    return (f"{name}: median {statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f}; "
            f"CPU median {statistics.median(cpu):.1f} ms; {len(ms)} runs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = synthetic_rows(args.lesions, args.patients, seed=args.seed)
    print(f"table: {args.lesions:,} lesions, {args.patients} patients, {len(rows):,} rows; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="qsmreview-stats-") as tmp:
        path = Path(tmp) / "lesions.csv"
        path.write_text(format_table(rows), encoding="utf-8")
        print(f"CSV file: {path.stat().st_size / 2**20:.2f} MiB")
        print(line("read + validate the table (read_table)", timed(lambda: read_table(path), args.runs)))
        table = read_table(path)

    result = analyse(table)
    print(line("analysis alone (analyse)", times := timed(lambda: analyse(table), args.runs)))
    measured = table.measured
    values = np.array([r.relative_susceptibility_ppm for r in measured])
    kinds = [r.lesion_type if r.lesion_type != "mixed" else f"mixed_{r.portion}" for r in measured]
    subjects = [r.subject for r in measured]
    print(line("  of which the mixed model (fit_mixed_model)",
               timed(lambda: fit_mixed_model(values, kinds, subjects), args.runs)))
    print(line("render text + JSON", timed(lambda: (render_text(result), render_json(result)), args.runs)))

    tracemalloc.start()
    analyse(table)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory allocated during one analysis: {peak / 2**20:.1f} MiB")

    model = result.mixed_model
    print(f"mixed model: {model.n_obs:,} values, {model.n_patients} patients, converged {model.converged}, "
          f"warnings {len(model.warnings)}; WM lesions n = {result.group('wm_lesions').n:,}, "
          f"Bonferroni m = {result.correction.m}")
    verdict = "met" if statistics.median(times[0]) <= TARGET_ANALYSIS_S else "NOT met"
    print(f"target: analysis <= {1000 * TARGET_ANALYSIS_S:.0f} ms median: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
