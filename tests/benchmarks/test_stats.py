"""The statistics benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "stats.py"


def test_it_prints_read_analysis_model_and_memory_figures_on_a_small_table() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--lesions", "400", "--patients", "20", "--runs", "2"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "table: 400 lesions, 20 patients, " in out
    for figure in ("read + validate the table (read_table): median ", "analysis alone (analyse): median ",
                   "of which the mixed model (fit_mixed_model): median ", "render text + JSON: median ",
                   "peak memory allocated during one analysis: "):
        assert figure in out
    assert "20 patients, converged True" in out
