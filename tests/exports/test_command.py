"""``manage.py export_study``: writes the dataset through the service, progress on stderr, exit
status 1 with the message on every refusal, nothing written then."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from tests.exports.conftest import Exportable, qsm_values
from tests.exports.readback import read_back


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def run(*args: str) -> int:
    """The command as from the shell: its exit status (0 when it returns)."""
    try:
        execute_from_command_line(["manage.py", "export_study", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_it_exports_a_folder_and_reports_on_stderr_and_stdout(exportable: Exportable, out_dir: Path, capsys):
    status = run(exportable.study.name, "--out", str(out_dir / "ds"))

    out, err = capsys.readouterr()
    assert status == 0, err
    assert "exporting 2 session(s) of 'MS 7T QSM'" in err and "sub-P01 ses-01" in err and "sub-P02 ses-preop" in err
    assert "exported 2 session(s) of 2 subject(s), 3 lesion row(s)" in out
    assert "subject 'P-02' -> sub-P02" in out and "session 'P-02'/'pre op' -> ses-preop" in out
    ds = read_back(out_dir / "ds")
    assert np.array_equal(np.asanyarray(ds.image("P01", "01", "Chimap").dataobj), qsm_values(1))


def test_it_exports_a_zip_by_id_as_a_user(exportable: Exportable, out_dir: Path, pi, capsys):
    status = run(str(exportable.study.pk), "--out", str(out_dir / "ms.zip"), "--zip", "--as-user", "pi")

    assert status == 0, capsys.readouterr().err
    with zipfile.ZipFile(out_dir / "ms.zip") as zf:
        assert "ms/sub-P01/ses-01/anat/sub-P01_ses-01_desc-consensus_dseg.nii.gz" in zf.namelist()


@pytest.mark.parametrize(
    "args, message",
    [
        (["No such study"], "no such study"),
        (["{study}", "--as-user", "rater1"], "no such study"),  # a rater: the study does not exist
        (["{study}", "--as-user", "outsider"], "no such study"),
        (["{study}", "--as-user", "nobody"], "no active user named 'nobody'"),
        (["bad\x00name"], "STUDY:"),
    ],
)
def test_it_exits_1_with_the_message(exportable: Exportable, out_dir: Path, rater, outsider, capsys, args, message):
    args = [a.format(study=exportable.study.name) for a in args]

    status = run(*args, "--out", str(out_dir / "ds"))

    assert status == 1
    assert message in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []


def test_it_refuses_an_existing_target_unless_overwrite(exportable: Exportable, out_dir: Path, capsys):
    (out_dir / "ds").mkdir()
    (out_dir / "ds" / "keep.txt").write_text("mine")

    # call_command first: run() ends as the shell's command does, closing the database connection
    with pytest.raises(CommandError, match="exists already") as refused:
        call_command("export_study", exportable.study.name, "--out", str(out_dir / "ds"), stderr=io.StringIO())
    assert refused.value.returncode == 1
    assert [p.name for p in (out_dir / "ds").iterdir()] == ["keep.txt"]

    assert run(exportable.study.name, "--out", str(out_dir / "ds"), "--overwrite") == 0
    read_back(out_dir / "ds")
    assert not (out_dir / "ds" / "keep.txt").exists()
    assert [p.name for p in out_dir.iterdir()] == ["ds"]


def test_it_exits_1_when_the_folder_is_missing(exportable: Exportable, out_dir: Path, capsys):
    assert run(exportable.study.name, "--out", str(out_dir / "missing" / "ds")) == 1
    assert "does not exist" in capsys.readouterr().err
