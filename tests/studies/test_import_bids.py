"""import_bids: a tiny BIDS tree with good, bad and unknown files; re-running imports nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from qsmreview.access import system
from qsmreview.studies.bids import import_bids, parse_name
from qsmreview.studies.models import Series, Session, Study, Subject
from qsmreview.studies.storage import series_local_path
from tests.fixtures.nifti import (
    AFFINE,
    files_under,
    integer_phase_data,
    magnitude_data,
    mask_data,
    phase_data,
    read_nifti,
    write_nifti,
)

SYSTEM = system("tests")

pytestmark = pytest.mark.django_db

EXPECTED_IMPORTED = 9
EXPECTED_SKIPPED = {
    "sub-01/ses-01/anat/sub-01_ses-01_acq-mp2rage_T1w.nii.gz": "unrecognised",
    "sub-01/ses-01/anat/sub-01_ses-01_foo.nii.gz": "unrecognised",
    "sub-01/ses-01/func/sub-01_ses-01_task-rest_bold.nii.gz": "unrecognised",
    "sub-02/anat/sub-02_FLAIR.nii.gz": "invalid",
    "sub-02/anat/sub-02_acq-2_part-phase_T2starw.nii.gz": "missing metadata",
}


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    _json(root / "dataset_description.json", {"Name": "tiny", "BIDSVersion": "1.9.0"})
    (root / "participants.tsv").write_text(
        "participant_id\tsex\tage\tgroup\tdisease_duration\tsite\n"
        "sub-01\tF\t41\tRRMS\t5.5\tA\n"
        "sub-02\tmale\t35\tcontrol\tn/a\tB\n"
    )
    # Inherited by every T2starw and MEGRE file (inheritance principle).
    _json(root / "T2starw.json", {"MagneticFieldStrength": 7})
    _json(root / "MEGRE.json", {"MagneticFieldStrength": 7})

    a = root / "sub-01" / "ses-01" / "anat"
    write_nifti(a / "sub-01_ses-01_part-mag_T2starw.nii.gz", magnitude_data())
    write_nifti(a / "sub-01_ses-01_part-phase_T2starw.nii.gz", phase_data())
    _json(a / "sub-01_ses-01_part-phase_T2starw.json", {"EchoTime": 0.02})
    write_nifti(a / "sub-01_ses-01_acq-wmn_T1w.nii.gz", magnitude_data((12, 12, 12)), np.diag([1.0, 1, 1, 1]))
    write_nifti(a / "sub-01_ses-01_acq-CSFnulled_T1w.nii.gz", magnitude_data((12, 12, 12)), np.diag([1.0, 1, 1, 1]))
    write_nifti(a / "sub-01_ses-01_FLAIR.nii.gz", magnitude_data())
    write_nifti(a / "sub-01_ses-01_desc-brain_mask.nii.gz", mask_data())
    write_nifti(a / "sub-01_ses-01_acq-mp2rage_T1w.nii.gz", magnitude_data())
    write_nifti(a / "sub-01_ses-01_foo.nii.gz", magnitude_data())
    (a / "sub-01_ses-01_scans_notes.txt").write_text("ignored: not NIfTI\n")
    write_nifti(root / "sub-01" / "ses-01" / "func" / "sub-01_ses-01_task-rest_bold.nii.gz", magnitude_data())

    b = root / "sub-02" / "anat"
    for echo, te in ((1, 0.004), (2, 0.008)):
        write_nifti(b / f"sub-02_echo-{echo}_part-mag_MEGRE.nii.gz", magnitude_data(seed=echo) / echo)
        _json(b / f"sub-02_echo-{echo}_part-mag_MEGRE.json", {"EchoTime": te})
        write_nifti(b / f"sub-02_echo-{echo}_part-phase_MEGRE.nii.gz", integer_phase_data())
        _json(b / f"sub-02_echo-{echo}_part-phase_MEGRE.json", {"EchoTime": te})
    bad = magnitude_data()
    bad[2, 2, 2] = np.nan
    write_nifti(b / "sub-02_FLAIR.nii.gz", bad)
    write_nifti(b / "sub-02_acq-2_part-phase_T2starw.nii.gz", phase_data())  # no EchoTime anywhere
    write_nifti(
        root / "derivatives" / "manual" / "sub-02" / "anat" / "sub-02_desc-lesion_mask.nii.gz", mask_data()
    )
    return root


def run(root: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_bids", str(root), *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_it_parses_bids_names():
    name = parse_name("sub-01_ses-02_echo-3_part-phase_MEGRE.nii.gz")
    assert name is not None
    assert name.entities == {"sub": "01", "ses": "02", "echo": "3", "part": "phase"}
    assert name.suffix == "MEGRE"
    assert parse_name("notes.txt") is None
    assert parse_name("sub-01_bad_T1w.nii") is None


def test_it_imports_the_recognised_series_and_reports_the_rest(bids, study, media_root):
    report = import_bids(bids, study=study, by=SYSTEM)
    assert len(report.imported) == EXPECTED_IMPORTED
    assert {s.path: s.category for s in report.skipped} == EXPECTED_SKIPPED
    reasons = {s.path: s.reason for s in report.skipped}
    assert "1 NaN" in reasons["sub-02/anat/sub-02_FLAIR.nii.gz"]
    assert "without EchoTime" in reasons["sub-02/anat/sub-02_acq-2_part-phase_T2starw.nii.gz"]
    assert "acq- label must name the contrast" in reasons["sub-01/ses-01/anat/sub-01_ses-01_acq-mp2rage_T1w.nii.gz"]
    assert "only anat/" in reasons["sub-01/ses-01/func/sub-01_ses-01_task-rest_bold.nii.gz"]

    assert Series.objects.count() == EXPECTED_IMPORTED
    assert len(files_under(media_root)) == EXPECTED_IMPORTED
    s1 = Session.objects.get(subject__code="01", label="01")
    kinds = dict(Series.objects.filter(session=s1).values_list("kind", "space"))
    assert kinds == {
        "t2star_mag": "t2star",
        "t2star_phase": "t2star",
        "t1_wmn": "native",
        "t1_csfn": "native",
        "flair": "t2star",
        "brain_mask": "t2star",
    }
    phase = Series.objects.get(session=s1, kind="t2star_phase")
    assert phase.echo_times_s == [0.02] and phase.b0_t == 7.0
    assert phase.provenance["source"] == "bids"
    assert phase.provenance["bids"]["files"] == ["sub-01/ses-01/anat/sub-01_ses-01_part-phase_T2starw.nii.gz"]


def test_it_stacks_per_echo_megre_files_into_one_4d_series(bids, study, media_root):
    import_bids(bids, study=study, by=SYSTEM)
    s2 = Session.objects.get(subject__code="02", label="01")
    mag = Series.objects.get(session=s2, kind="t2star_mag")
    assert mag.shape == [16, 20, 8, 2]
    assert mag.echo_times_s == [0.004, 0.008]
    assert mag.provenance["bids"]["stacked_echoes"] == 2
    with series_local_path(mag) as path:
        data, affine = read_nifti(path)
    np.testing.assert_allclose(data[..., 1], magnitude_data(seed=2) / 2, rtol=1e-6)
    np.testing.assert_allclose(affine, AFFINE)
    phase = Series.objects.get(session=s2, kind="t2star_phase")
    assert phase.shape == [16, 20, 8, 2] and phase.dtype == "float32"
    assert phase.provenance["conversions"] == ["scaled integer phase [-4096, 4095] -> radians (stored as float32)"]
    lesions = Series.objects.get(session=s2, kind="lesion_mask")
    assert lesions.blinded and lesions.provenance["bids"]["files"][0].startswith("derivatives/manual/")


def test_it_creates_subjects_from_participants_tsv(bids, study, media_root):
    report = import_bids(bids, study=study, by=SYSTEM)
    assert report.subjects_created == ["01", "02"]
    one = Subject.objects.get(study=study, code="01")
    assert (one.sex, one.age_years, one.phenotype, one.disease_duration_years) == ("F", 41.0, "RRMS", 5.5)
    assert one.extra == {"site": "A"}
    two = Subject.objects.get(study=study, code="02")
    assert (two.sex, two.phenotype, two.disease_duration_years) == ("M", "HC", None)
    assert Session.objects.get(subject=two).field_strength_t == 7.0


def test_it_imports_nothing_new_on_a_second_run(bids, study, media_root):
    import_bids(bids, study=study, by=SYSTEM)
    before = list(Series.objects.order_by("pk").values("pk", "sha256", "version", "is_current"))
    report = import_bids(bids, study=study, by=SYSTEM)
    assert report.imported == []
    already = report.skipped_by("already imported")
    assert len(already) == EXPECTED_IMPORTED
    assert "same content as series" in already[0].reason
    assert list(Series.objects.order_by("pk").values("pk", "sha256", "version", "is_current")) == before
    assert len(files_under(media_root)) == EXPECTED_IMPORTED
    assert report.subjects_created == [] and report.sessions_created == []


def test_it_stores_nothing_in_a_dry_run(bids, study, media_root):
    report = import_bids(bids, study=study, by=SYSTEM, dry_run=True)
    assert len(report.imported) == EXPECTED_IMPORTED
    assert {s.path: s.category for s in report.skipped} == EXPECTED_SKIPPED
    assert not Series.objects.exists() and not Subject.objects.exists()
    assert files_under(media_root) == []


def test_the_command_prints_a_summary(bids, study, media_root):
    out = run(bids, "--study", study.name)
    assert f"imported {EXPECTED_IMPORTED} series; skipped {len(EXPECTED_SKIPPED)}" in out
    assert "- sub-02/anat/sub-02_FLAIR.nii.gz: invalid: image contains non-finite values" in out
    assert "+ sub-01/ses-01/anat/sub-01_ses-01_part-mag_T2starw.nii.gz -> sub-01 ses-01 t2star_mag" in out
    again = run(bids, "--study", study.name)
    assert f"imported 0 series; skipped {EXPECTED_IMPORTED + len(EXPECTED_SKIPPED)}" in again
    assert "already imported" in again


def test_the_command_creates_the_study_only_when_asked(bids, db, media_root, rater):
    with pytest.raises(CommandError, match="study 'New' does not exist; pass --create-study"):
        run(bids, "--study", "New")
    with pytest.raises(CommandError, match="not created in a dry run"):
        run(bids, "--study", "New", "--create-study", "--dry-run")
    with pytest.raises(CommandError, match="needs --admin USERNAME"):
        run(bids, "--study", "New", "--create-study")
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run(bids, "--study", "New", "--create-study", "--admin", "ghost")
    assert not Study.objects.filter(name="New").exists()
    out = run(bids, "--study", "New", "--create-study", "--admin", rater.username)
    assert "created study 'New' with admin" in out
    study = Study.objects.get(name="New")
    assert study.subjects.count() == 2
    # The study has its admin (created through the service), and no user is its creator.
    assert list(study.memberships.values_list("user__username", "role")) == [(rater.username, "admin")]
    assert study.created_by is None
    assert {s.uploaded_by for s in Series.objects.filter(session__subject__study=study)} == {None}
    assert {s.provenance["uploaded_by"].split(" as ")[0] for s in Series.objects.filter(session__subject__study=study)} == {
        "system (manage.py import_bids)"
    }


def test_it_refuses_echoes_whose_stack_passes_the_voxel_limit_before_reading_them(
    bids, study, media_root, settings, monkeypatch
):
    import nibabel.arrayproxy

    settings.QSMREVIEW_MAX_VOXELS = 4000  # one echo (2,560 voxels) fits, two stacked do not
    stacked = []
    original = nibabel.arrayproxy.ArrayProxy.__array__

    def spy(proxy, *args, **kwargs):
        if proxy.shape == (16, 20, 8) and "MEGRE" in str(getattr(proxy.file_like, "name", proxy.file_like)):
            stacked.append(proxy)
        return original(proxy, *args, **kwargs)

    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__array__", spy)

    report = import_bids(bids, study=study, by=SYSTEM)

    assert stacked == []  # no echo's data was read
    reasons = {s.path: s.reason for s in report.skipped_by("invalid")}
    mag = "sub-02/anat/sub-02_echo-1_part-mag_MEGRE.nii.gz, sub-02/anat/sub-02_echo-2_part-mag_MEGRE.nii.gz"
    assert reasons[mag] == (
        "2 echoes stacked: volume too large: the header declares 16 x 20 x 8 x 2 float32 = "
        "5,120 voxels (20.0 KiB unpacked), more than the limit of 4,000 voxels (QSMREVIEW_MAX_VOXELS)"
    )
    assert not Series.objects.filter(session__subject__code="02", kind__in=["t2star_mag", "t2star_phase"]).exists()
