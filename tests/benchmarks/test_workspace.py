"""The workspace benchmark's server part still runs end to end (figures are documented, not asserted).

Runs the script as a user would (its own temporary database, media and runserver), on a small
grid and without the browser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "workspace.py"


def test_it_prints_the_server_figures_without_a_browser() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "32x32x12", "--saves", "3", "--no-browser"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "(4) save one mask revision (service, median of 3)" in out
    assert "(1) display volumes over HTTP" in out
    rows = [line for line in out.splitlines() if "first (computes)" in line]
    assert [row.split()[0] for row in rows] == ["t2star_mag", "flair", "t1_wmn", "t1_csfn"]
    assert all("(status 304)" in row for row in rows)
    assert 'ETag "display-v1-' in out and "Cache-Control: private, no-cache" in out
