"""``python -m qsmreview.stats``: text and JSON out, exit 2 with a message on a bad table, no Django."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qsmreview.stats.cli import main
from qsmreview.stats.synthetic import reference_cohort
from qsmreview.stats.table import format_table, read_table
from tests.stats.textcheck import check_text_against_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cohort_csv(tmp_path: Path) -> Path:
    path = tmp_path / "lesions.csv"
    path.write_text(format_table(reference_cohort()), encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_it_prints_the_analysis_as_text_and_as_the_same_numbers_in_json(cohort_csv: Path, capsys) -> None:
    code, text, err = run([str(cohort_csv)], capsys)
    assert (code, err) == (0, "")
    assert text.startswith("Lesion susceptibility: group statistics")
    code, out, err = run([str(cohort_csv), "--json"], capsys)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["source"] == str(cohort_csv) and data["correction"]["m"] == 6
    check_text_against_json(text, data)


def test_it_reads_tsv_and_takes_alpha_family_and_model_options(tmp_path: Path, capsys) -> None:
    path = tmp_path / "lesions.tsv"
    path.write_text(format_table(reference_cohort(), delimiter="\t"), encoding="utf-8")
    code, out, _ = run([str(path), "--json", "--alpha", "0.01", "--family", "wm_lesions", "mixed_paired_t",
                        "--model-portions"], capsys)
    data = json.loads(out)
    assert code == 0
    assert (data["alpha"], data["correction"]["m"], data["correction"]["threshold"]) == (0.01, 2, 0.005)
    assert data["mixed_model"]["levels"] == ["wm", "cortical", "mixed_wm", "mixed_cortical"]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("subject,lesion,lesion_type,relative_susceptibility_ppm\nA,1,wm,0.1\n", "line 1, column portion"),
        ("subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nA,1,wm,wm,0.1\nA,2,gm,wm,0.1\n",
         "line 3, column lesion_type"),
        ("subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nA,1,wm,wm,NaN\n",
         "line 2, column relative_susceptibility_ppm"),
    ],
)
def test_it_exits_2_with_the_line_and_column_on_stderr_and_nothing_on_stdout(tmp_path: Path, capsys, content, where) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    code, out, err = run([str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}, {where}: ")


def test_it_exits_2_on_a_missing_file_and_on_bad_options(tmp_path: Path, capsys) -> None:
    code, out, err = run([str(tmp_path / "absent.csv")], capsys)
    assert (code, out) == (2, "") and "cannot read the file" in err
    code, out, err = run([], capsys)
    assert (code, out) == (2, "") and "error: give LESIONS.csv" in err
    for bad in (["--alpha", "1.5"], ["--alpha", "x"], ["--family", "nonsense"]):
        with pytest.raises(SystemExit) as exit_:
            main([str(tmp_path / "absent.csv"), *bad])
        out, err = capsys.readouterr()
        assert (exit_.value.code, out) == (2, "") and "error:" in err


def test_it_writes_the_reference_cohort(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sub" / "cohort.csv"
    code, out, err = run(["--write-reference-cohort", str(path), "--seed", "3"], capsys)
    assert (code, out, err) == (0, "", f"wrote {path}\n")
    rows = read_table(path).rows
    assert [(r.subject, r.lesion, r.portion, r.relative_susceptibility_ppm) for r in rows] == [
        (r.subject, r.lesion, r.portion, r.relative_susceptibility_ppm) for r in reference_cohort(3)]
    assert [p.name for p in path.parent.iterdir()] == ["cohort.csv"]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_it_runs_in_a_subprocess_without_django_settings(cohort_csv: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "qsmreview.stats", str(cohort_csv), "--json"], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["groups"][0]["n"] == 147
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nA,1,mixed,,0.1\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "qsmreview.stats", str(bad)], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {bad}, line 2, column portion: a mixed lesion's row must say which portion it measures (wm or cortical)\n"


PROBE = """
import json, sys
from qsmreview.stats.cli import main
from qsmreview.stats.analysis import analyse
from qsmreview.stats.synthetic import reference_cohort
from qsmreview.stats.report import render_json
render_json(analyse(reference_cohort()))
import django.apps, django.conf
print(json.dumps({
    "settings_configured": django.conf.settings.configured,
    "apps_ready": django.apps.apps.ready,
    "apps_loading": django.apps.apps.loading,
    "qsmreview_modules": sorted(m for m in sys.modules if m.startswith("qsmreview")),
    "django_db_imported": "django.db" in sys.modules,
}))
"""


def test_it_configures_no_django_settings_and_loads_no_app() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert (probe["settings_configured"], probe["apps_ready"], probe["apps_loading"]) == (False, False, False)
    assert not probe["django_db_imported"]
    # qsmreview/__init__.py brings the Celery app (qsmreview.celery); nothing else outside stats
    assert {m for m in probe["qsmreview_modules"] if not m.startswith("qsmreview.stats")} == {"qsmreview", "qsmreview.celery"}


def test_it_imports_django_nowhere_in_the_package() -> None:
    import ast

    for path in (ROOT / "qsmreview" / "stats").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "django" or n.startswith("django.") for n in names), path
