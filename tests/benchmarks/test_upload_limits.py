"""The upload-limits benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "upload_limits.py"


def test_it_prints_a_refusal_per_input(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("upload_limits", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    assert bench.main(["--small"]) == 0

    rows = [line for line in capsys.readouterr().out.splitlines() if "volume too large" in line]
    assert len(rows) == 2 and all("QSMREVIEW_MAX_VOXELS" in row for row in rows)
