"""The mask-save benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "mask_save.py"


def test_it_prints_the_save_time_memory_and_sizes_on_a_small_grid() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "48x40x16", "--saves", "3"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "save one mask revision (revision_create, 3 saves): median " in out
    assert "peak memory allocated during one save" in out
    assert "5 lesions of" in out  # the typical mask's lesions stay apart on a small grid too
    assert "upload " in out and "stored file " in out
