"""The accuracy benchmark still runs end to end (its figures are documented, not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pipeline_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_prints_a_row_per_map_and_draws_the_lesion_plot(bench, tmp_path, capsys):
    png = tmp_path / "lesions.png"
    assert bench.main(["--seeds", "0", "--snr", "50", "--setups", "default", "--sources", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("   0    50 ")]
    assert [r[2] for r in rows] == ["default", "MEDI,", "PDF(true"]
    assert "1/1 ok" in out  # seed 0 at SNR 50 meets the lesion criteria (the pipeline test's phantom)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_it_refuses_a_malformed_size(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--size", "96x96"])
    assert exc.value.code == 2
    assert "not a matrix size like 96x96x48" in capsys.readouterr().err
