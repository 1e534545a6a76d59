"""``python -m qsmreview.lesions consensus``: the four outputs, exit 2 with nothing written on bad
input, and no Django anywhere in the lesion numerics."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qsmreview.lesions.cli import main
from qsmreview.lesions.io import OUTPUT_FILES
from qsmreview.lesions.pipeline import TABLE_COLUMNS
from tests.lesions.factories import SHAPE, session

ROOT = Path(__file__).resolve().parents[2]
AFFINE = np.array([[1.0, 0, 0, -15], [0, 1.0, 0, -15], [0, 0, 1.0, -2], [0, 0, 0, 1]])  # 1 mm, as the hand-worked session


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return str(path)


@pytest.fixture()
def files(tmp_path: Path) -> dict:
    s = session()
    mask = np.ones(SHAPE, np.uint8)
    return {
        "masks": [save(tmp_path / f"{r}.nii.gz", m) for r, m in s["masks"].items()],
        "tissue": save(tmp_path / "tissue.nii.gz", s["tissue"]),
        "qsm": save(tmp_path / "chi.nii.gz", s["qsm"]),
        "qsm_mask": save(tmp_path / "mask.nii.gz", mask),
        "out": str(tmp_path / "out"),
        "dir": tmp_path,
    }


def argv(f: dict) -> list[str]:
    return ["consensus", "--masks", *f["masks"], "--tissue", f["tissue"], "--qsm", f["qsm"],
            "--qsm-mask", f["qsm_mask"], "--subject", "MS001", "--out", f["out"]]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_it_writes_the_consensus_the_references_and_the_table_from_a_subprocess_without_django(files: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", "qsmreview.lesions", *argv(files)], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, timeout=120, check=False)

    assert proc.returncode == 0, proc.stderr
    out = Path(files["out"])
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert "[  0%] validate inputs" in proc.stderr and "[100%] done" in proc.stderr
    lesions = nib.load(str(out / "consensus_lesions.nii.gz"))
    assert np.allclose(lesions.affine, AFFINE)
    assert sorted(np.unique(np.asarray(lesions.dataobj)).tolist()) == [0, 1, 2]
    refs = np.asarray(nib.load(str(out / "reference_rois.nii.gz")).dataobj)
    assert sorted(np.unique(refs).tolist()) == [0, 11, 21, 22]
    with open(out / "lesions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(TABLE_COLUMNS)
    assert [(r[1], r[2], r[3]) for r in rows[1:]] == [("1", "wm", "wm"), ("2", "mixed", "cortical"), ("2", "mixed", "wm")]
    first = dict(zip(rows[0], rows[1]))
    assert first["subject"] == "MS001" and first["raters"] == "A;B;C"
    assert float(first["relative_susceptibility_ppm"]) == pytest.approx(0.04, abs=1e-6)
    doc = json.loads((out / "lesions.json").read_text())
    assert doc["columns"] == list(TABLE_COLUMNS) and len(doc["rows"]) == 3
    assert doc["agreement"]["parameters"]["connectivity"] == 6
    assert doc["params"]["reference_gap_vox"] == 2.0


def test_it_leaves_susceptibility_cells_empty_without_a_qsm(files: dict) -> None:
    args = ["consensus", "--masks", *files["masks"], "--tissue", files["tissue"], "--out", files["out"], "--quiet"]

    assert main(args) == 0

    with open(Path(files["out"]) / "lesions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["lesion_mean_ppm"] == "" and r["relative_susceptibility_ppm"] == "" for r in rows)


def test_it_replaces_the_files_of_an_existing_output_directory_and_leaves_no_temporary(files: dict) -> None:
    out = Path(files["out"])
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    (out / "lesions.csv").write_text("old")

    assert main([*argv(files), "--quiet"]) == 0

    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "notes.txt"])
    assert (out / "lesions.csv").read_text().startswith("subject,lesion,")
    assert not [p for p in files["dir"].iterdir() if p.name.startswith(".tmp-")]


def test_it_takes_the_majority_from_the_command_line(files: dict) -> None:
    # With all three raters required, lesion 2 (drawn by A and B only) is rejected.
    assert main([*argv(files), "--majority", "3", "--quiet"]) == 0

    doc = json.loads((Path(files["out"]) / "lesions.json").read_text())
    assert [c["status"] for c in doc["candidates"]] == ["lesion", "rejected"]
    assert doc["params"]["majority"] == 3


def test_it_refuses_a_majority_above_the_number_of_raters(files: dict, capsys) -> None:
    assert main([*argv(files), "--majority", "4"]) == 2
    assert "majority 4 is more than the 3 raters" in capsys.readouterr().err
    assert not Path(files["out"]).exists()


def bad_shape(f: dict) -> None:
    save(Path(f["masks"][1]), np.zeros((4, 4, 4), np.uint8))


def bad_affine(f: dict) -> None:
    data = np.asarray(nib.load(f["tissue"]).dataobj)
    save(Path(f["tissue"]), data, np.diag([1.0, 1.0, 2.0, 1.0]))


def non_binary(f: dict) -> None:
    data = np.asarray(nib.load(f["masks"][0]).dataobj).copy()
    data[0, 0, 0] = 2
    save(Path(f["masks"][0]), data)


def bad_labels(f: dict) -> None:
    data = np.asarray(nib.load(f["tissue"]).dataobj).copy()
    data[0, 0, 0] = 5
    save(Path(f["tissue"]), data)


def nan_in_mask(f: dict) -> None:
    data = np.asarray(nib.load(f["qsm"]).dataobj).copy()
    data[3, 3, 3] = np.nan
    save(Path(f["qsm"]), data)


def unreadable(f: dict) -> None:
    Path(f["qsm"]).write_bytes(b"not a nifti file")


def missing(f: dict) -> None:
    Path(f["tissue"]).unlink()


@pytest.mark.parametrize(
    "spoil, message",
    [
        (bad_shape, "does not match the first mask's"),
        (bad_affine, "affine differs"),
        (non_binary, "mask is not binary"),
        (bad_labels, "FSL FAST codes"),
        (nan_in_mask, "NaN or infinite value"),
        (unreadable, "cannot read as NIfTI"),
        (missing, "no such file"),
    ],
)
def test_it_exits_2_with_a_message_and_writes_nothing_on_bad_input(files: dict, spoil, message: str, capsys) -> None:
    spoil(files)
    before = sorted(p.name for p in files["dir"].iterdir())

    code = main(argv(files))

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") or "\nerror: " in err
    assert message in err
    assert not Path(files["out"]).exists()
    assert sorted(p.name for p in files["dir"].iterdir()) == before  # no temporary left either


def test_it_never_imports_django_settings_or_apps_in_the_lesion_numerics() -> None:
    code = """
import sys, os
import numpy as np
import qsmreview.lesions.agreement, qsmreview.lesions.classify, qsmreview.lesions.cli
import qsmreview.lesions.consensus, qsmreview.lesions.io, qsmreview.lesions.measure
import qsmreview.lesions.params, qsmreview.lesions.pipeline, qsmreview.lesions.qc
import qsmreview.lesions.reference, qsmreview.lesions.synthetic, qsmreview.lesions.components
from tests.lesions.factories import session
qsmreview.lesions.pipeline.analyse_session(**session())
loaded = sorted(m for m in sys.modules if m.startswith("django"))
# qsmreview/__init__.py imports the Celery app, which imports django.conf lazily; nothing may
# configure settings or load apps, models or the database layer.
assert "qsmreview.settings" not in sys.modules, "settings imported"
assert not any(m.startswith(("django.apps", "django.db", "django.contrib")) for m in loaded), loaded
if "django.conf" in sys.modules:
    from django.conf import settings
    assert not settings.configured
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), cwd=ROOT,
                          timeout=120, check=False)

    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_it_has_no_django_import_in_its_source() -> None:
    for path in (ROOT / "qsmreview" / "lesions").glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
