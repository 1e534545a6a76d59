"""The consensus benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "consensus.py"


def test_it_prints_times_stages_and_memory_per_lesion_count_on_a_small_grid() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "96x96x24", "--lesions", "5", "10", "--repeats", "1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("lesions placed") == 2
    assert "core best" in out and "analyse_session without vessels best" in out
    assert "stages (median): validate" in out and "vessel proposals" in out
    assert "peak memory allocated during one analysis (tracemalloc)" in out
