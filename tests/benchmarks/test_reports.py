"""The statistics page benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "reports.py"


def test_it_prints_page_api_and_analysis_figures_on_a_small_table() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--lesions", "400", "--patients", "20", "--runs", "2"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "table: 400 lesions, 20 patients, " in out
    for figure in ("import (checks + store): ", "statistics job's work", "dashboard page (served): median ",
                   "statistics API, JSON (served): median ", "lesion table CSV (served): median ",
                   "analysis alone (analyse): median ", "targets: page <= 500 ms"):
        assert figure in out
