"""The solver-agreement benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "solver_agreement.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solver_agreement", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_prints_the_gap_to_the_minimum_and_the_consistent_field_row(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    # A 64 x 64 x 32 phantom over the same 180 x 180 x 90 mm field of view: ~10 s.
    assert bench.main(["--seeds", "0", "--size", "64x64x32", "--voxel", "2.82", "2.82", "2.8"]) == 0
    out = capsys.readouterr().out
    rows = {line[5:29].strip(): line.split() for line in out.splitlines() if line.startswith("   0 ")}
    assert {"toolbox", "admm", "admm tol 1e-3", "minimiser", "consistent field"} <= set(rows)
    assert rows["minimiser"][3] == "+0.00%"  # the minimiser is the reference of the gap column
    assert "admm vs toolbox: NRMSE" in out and "peak RSS" in out
