"""The export service: what a study's dataset holds (read back against the stored series and
consensus, voxel for voxel), who may export it, and that a failure writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qsmreview.access import system
from qsmreview.errors import Gone, NotFound, ValidationFailed
from qsmreview.exports.services import study_export, study_for_export
from qsmreview.studies.models import Series
from qsmreview.studies.storage import series_load
from tests.consensus.factories import ROWS, label_maps
from tests.exports.conftest import Exportable, qsm_values
from tests.exports.readback import read_back
from tests.fixtures.nifti import AFFINE


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where exports go (tmp_path itself holds the media root)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_it_exports_the_current_qsm_and_consensus_voxel_for_voxel(exportable: Exportable, admin, tmp_path: Path):
    report = study_export(by=admin, study=exportable.study, out=tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    chimap = ds.image("P01", "01", "Chimap")
    stored = series_load(exportable.qsm)
    assert np.array_equal(np.asanyarray(chimap.dataobj), np.asanyarray(stored.dataobj))
    assert np.array_equal(np.asanyarray(chimap.dataobj), qsm_values(1))
    assert np.allclose(chimap.affine, np.array(exportable.qsm.affine)) and np.allclose(chimap.affine, AFFINE)
    lesions, reference = label_maps()
    for tail, expected in (("desc-consensus_dseg", lesions), ("desc-reference_dseg", reference)):
        image = ds.image("P01", "01", tail)
        assert np.array_equal(np.asanyarray(image.dataobj), expected)
        assert np.allclose(image.affine, AFFINE)
    assert np.array_equal(np.asanyarray(ds.image("P02", "preop", "Chimap").dataobj), qsm_values(2))
    assert sorted(ds.images) == [
        "sub-P01/ses-01/anat/sub-P01_ses-01_Chimap.nii.gz",
        "sub-P01/ses-01/anat/sub-P01_ses-01_desc-consensus_dseg.nii.gz",
        "sub-P01/ses-01/anat/sub-P01_ses-01_desc-reference_dseg.nii.gz",
        "sub-P02/ses-preop/anat/sub-P02_ses-preop_Chimap.nii.gz",
    ]  # P03 has nothing to export
    assert {(r["participant_id"], r["source_code"]) for r in ds.participants} == {("sub-P01", "P01"), ("sub-P02", "P-02")}
    assert report.sessions == {("P01", "01"): "01", ("P-02", "pre op"): "preop"}


def test_it_records_provenance_in_the_sidecars(exportable: Exportable, admin, tmp_path: Path):
    study_export(by=admin, study=exportable.study, out=tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    qsm = ds.sidecar("P01", "01", "Chimap")
    assert qsm["Units"] == "ppm" and qsm["MagneticFieldStrength"] == 7.0
    assert {k: qsm["qsmreview"][k] for k in ("series", "version", "sha256")} == {
        "series": exportable.qsm.pk, "version": 1, "sha256": exportable.qsm.sha256
    }
    assert qsm["qsmreview"]["provenance"]["parameters"] == {"solver": "admm", "lam": 1000}
    run = exportable.run
    measurements = run.measurement_sets.get(current=True)
    for tail, sha in (("desc-consensus_dseg", measurements.lesion_labels_sha256),
                      ("desc-reference_dseg", measurements.reference_labels_sha256)):
        meta = ds.sidecar("P01", "01", tail)["qsmreview"]
        assert meta["consensus_run"] == run.pk and meta["measurement_set"] == 1 and meta["sha256"] == sha
        assert meta["parameters"] == run.params and meta["code_version"] == run.code_version
        assert [r["rater"] for r in meta["inputs"]["revisions"]] == ["rater1", "rater2", "rater3"]
    assert ds.sidecar("P01", "01", "desc-reference_dseg")["Sources"] == [
        "bids::sub-P01/ses-01/anat/sub-P01_ses-01_desc-consensus_dseg.nii.gz"
    ]
    assert ds.lookup("P01", "01", "desc-consensus_dseg") == [
        {"index": "1", "name": "lesion 1 (wm)"}, {"index": "2", "name": "lesion 2 (mixed)"}
    ]
    assert {r["index"] for r in ds.lookup("P01", "01", "desc-reference_dseg")} >= {"11", "21", "22"}
    assert ds.description["GeneratedBy"][0]["Name"] == "qsmreview"
    assert ds.description["Name"] == exportable.study.name


def test_it_exports_the_current_run_s_lesion_table(exportable: Exportable, admin, tmp_path: Path):
    study_export(by=admin, study=exportable.study, out=tmp_path / "ds")

    rows = read_back(tmp_path / "ds").lesions
    assert [(r["participant_id"], r["session_id"], r["subject"], r["lesion"], r["portion"]) for r in rows] == [
        ("sub-P01", "ses-01", "P01", "1", "wm"), ("sub-P01", "ses-01", "P01", "2", "cortical"),
        ("sub-P01", "ses-01", "P01", "2", "wm"),
    ]
    by_key = {(r["lesion"], r["portion"]): r for r in rows}
    for expected in ROWS:
        row = by_key[(str(expected["lesion"]), expected["portion"])]
        assert row["consensus_run"] == str(exportable.run.pk) and row["measurement_set"] == "1"
        assert row["lesion_type"] == expected["lesion_type"] and row["raters"] == ";".join(expected["raters"])
        for column in ("relative_susceptibility_ppm", "volume_mm3", "lesion_mean_ppm", "lesion_sd_ppm"):
            value = expected[column]
            assert row[column] == ("n/a" if value is None else str(value)), column
        assert row["excluded"] == "false" and row["exclusion_reason"] == "n/a"


@pytest.mark.parametrize("who", ["admin", "pi", "superuser"])
def test_it_lets_the_study_s_admins_and_pi_export(exportable: Exportable, who: str, request, tmp_path: Path):
    user = request.getfixturevalue(who)

    study_export(by=user, study=exportable.study.pk, out=tmp_path / "ds.zip", as_zip=True)

    assert (tmp_path / "ds.zip").is_file()


@pytest.mark.parametrize("who", ["rater", "outsider", "other_admin"])
def test_it_hides_the_study_from_raters_and_outsiders(exportable: Exportable, who: str, request, out_dir: Path):
    user = request.getfixturevalue(who)

    with pytest.raises(NotFound, match="no such study"):
        study_export(by=user, study=exportable.study, out=out_dir / "ds")
    assert list(out_dir.iterdir()) == []


def test_it_finds_the_study_by_name_or_id(exportable: Exportable, admin):
    assert study_for_export(by=admin, study=exportable.study.name) == exportable.study
    assert study_for_export(by=admin, study=str(exportable.study.pk)) == exportable.study
    assert study_for_export(by=system("manage.py export_study"), study=exportable.study.pk) == exportable.study
    with pytest.raises(NotFound):
        study_for_export(by=admin, study="no such study")
    with pytest.raises(NotFound):
        study_for_export(by=admin, study=str(2**70))


def test_it_writes_nothing_when_a_stored_file_is_gone(exportable: Exportable, admin, out_dir: Path):
    measurements = exportable.run.measurement_sets.get(current=True)
    measurements.reference_labels.storage.delete(measurements.reference_labels.name)

    with pytest.raises(Gone, match="reference label map of consensus run"):
        study_export(by=admin, study=exportable.study, out=out_dir / "ds")
    assert list(out_dir.iterdir()) == []


def test_it_refuses_an_existing_target_without_overwrite(exportable: Exportable, admin, tmp_path: Path):
    (tmp_path / "ds").mkdir()

    with pytest.raises(ValidationFailed, match="exists already"):
        study_export(by=admin, study=exportable.study, out=tmp_path / "ds")
    assert list((tmp_path / "ds").iterdir()) == []


def test_it_imports_back_as_qsm_and_never_as_tissue(exportable: Exportable, admin, other_study, out_dir: Path):
    """import_bids reads the export's Chimap as QSM; the lesion and ROI maps are not tissue labels
    (lesion ids 1 and 2 would pass as FAST codes)."""
    from qsmreview.studies.bids import import_bids

    study_export(by=admin, study=exportable.study, out=out_dir / "ds")

    report = import_bids(out_dir / "ds", study=other_study, by=system("tests"))

    assert sorted((i.subject, i.session, i.kind) for i in report.imported) == [("P01", "01", "qsm"), ("P02", "preop", "qsm")]
    skipped = {s.path.rsplit("/", 1)[1]: (s.category, s.reason) for s in report.skipped}
    assert skipped["sub-P01_ses-01_desc-consensus_dseg.nii.gz"] == (
        "unrecognised", "desc-consensus_dseg is a lesion or ROI label map, not tissue labels"
    )
    assert skipped["sub-P01_ses-01_desc-reference_dseg.nii.gz"][0] == "unrecognised"
    imported = Series.objects.get(pk=next(i.series_id for i in report.imported if i.subject == "P01"))
    assert np.array_equal(np.asanyarray(series_load(imported).dataobj), qsm_values(1))


def test_it_exports_a_run_of_the_real_pipeline_worked_by_hand(media_root, rated, out_dir: Path):
    """The consensus tests' session: lesion A (27 voxels at 0.10 ppm) and B (27 at 0.05 ppm) in
    white matter at 0.02 ppm, so relative susceptibility 0.08 and 0.03 ppm. ``media_root`` comes
    first: pytest sets fixtures up left to right, and ``rated`` stores files."""
    from qsmreview.consensus.services import consensus_run, load_labels_and_affine
    from tests.consensus.conftest import AFFINE as GRID_AFFINE
    from tests.consensus.conftest import LESION_A, LESION_B, qsm_data

    run = consensus_run(by=rated.admin, session=rated.session, trigger="test")
    measurements = run.measurement_sets.get(current=True)

    study_export(by=rated.admin, study=rated.session.subject.study, out=out_dir / "ds")

    ds = read_back(out_dir / "ds")
    chimap = ds.image("P01", "01", "Chimap")
    assert np.array_equal(np.asanyarray(chimap.dataobj), qsm_data())
    for tail, field in (("desc-consensus_dseg", "lesion_labels"), ("desc-reference_dseg", "reference_labels")):
        image = ds.image("P01", "01", tail)
        stored, affine = load_labels_and_affine(getattr(measurements, field))
        assert np.array_equal(np.asanyarray(image.dataobj), stored)
        assert np.allclose(image.affine, affine) and np.allclose(image.affine, GRID_AFFINE)
    lesions = np.asanyarray(ds.image("P01", "01", "desc-consensus_dseg").dataobj)
    ids = {int(lesions[LESION_A][0, 0, 0]), int(lesions[LESION_B][0, 0, 0])}
    assert ids == {1, 2} and int((lesions > 0).sum()) == 54
    relative = {int(r["lesion"]): float(r["relative_susceptibility_ppm"]) for r in ds.lesions}
    assert relative[int(lesions[LESION_A][0, 0, 0])] == pytest.approx(0.08, abs=1e-6)
    assert relative[int(lesions[LESION_B][0, 0, 0])] == pytest.approx(0.03, abs=1e-6)
    rois = {int(r["reference_roi"]) for r in ds.lesions}
    assert rois == {11, 21} and rois <= {int(r["index"]) for r in ds.lookup("P01", "01", "desc-reference_dseg")}
    meta = ds.sidecar("P01", "01", "desc-consensus_dseg")["qsmreview"]
    assert meta["consensus_run"] == run.pk and meta["inputs"]["qsm"]["sha256"] == rated.qsm.sha256


def test_it_keeps_every_column_of_the_consensus_table_in_its_order():
    """lesions.tsv holds the consensus CSV's columns in the CSV's order (after participant_id and
    session_id), so a script reads either the same way; a new CSV column needs a dictionary entry."""
    from qsmreview.consensus.selectors import CSV_COLUMNS
    from qsmreview.exports.bids import LESION_COLUMNS

    exported = [c for c in LESION_COLUMNS if c in CSV_COLUMNS]
    assert exported == list(CSV_COLUMNS)
    assert list(LESION_COLUMNS)[:2] == ["participant_id", "session_id"]
    assert list(LESION_COLUMNS)[2:2 + len(CSV_COLUMNS)] == list(CSV_COLUMNS)
