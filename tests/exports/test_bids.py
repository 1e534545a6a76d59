"""The BIDS writer on its own (no database): a dataset written from known arrays reads back
voxel for voxel, with BIDS names, sidecars and data dictionary, and is written atomically."""

from __future__ import annotations

import json
import zipfile
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qsmreview.exports.bids import (
    LESION_COLUMNS,
    DatasetExport,
    ExportError,
    LabelVolume,
    SessionExport,
    Volume,
    bids_label,
    bids_labels,
    write_dataset,
)
from tests.exports.readback import read_back

GRID = (16, 16, 8)
AFFINE = np.array([[0.5, 0, 0, -4.0], [0, 0.5, 0, -4.0], [0, 0, 1.0, -4.0], [0, 0, 0, 1]])


def chi(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, GRID).astype(np.float32)


def lesions() -> np.ndarray:
    data = np.zeros(GRID, np.int16)
    data[3:5, 3:5, 3:5] = 1
    data[10:13, 10, 4] = 2
    return data


def reference() -> np.ndarray:
    data = np.zeros(GRID, np.int16)
    data[1, 3:5, 3] = 11
    data[10:12, 13, 4] = 21
    data[12, 13, 4] = 22
    return data


def session(subject: str, label: str, seed: int = 0, **extra) -> SessionExport:
    return SessionExport(
        subject=subject,
        session=label,
        chimap=Volume(chi(seed), AFFINE, {"qsmreview": {"series": seed}}),
        lesions=LabelVolume(lesions(), AFFINE, {"qsmreview": {"consensus_run": 7}}, labels={1: "lesion1", 2: "lesion2"}),
        reference=LabelVolume(reference(), AFFINE, {}, labels={11: "lesion1 wm reference"}),
        lesion_rows=[
            {"subject": subject, "lesion": 1, "lesion_type": "wm", "portion": "wm", "relative_susceptibility_ppm": 0.07,
             "raters": ["rater1", "rater2"], "excluded": False, "reference_roi": 11},
            {"subject": subject, "lesion": 2, "lesion_type": "mixed", "portion": "cortical",
             "relative_susceptibility_ppm": None, "excluded": True, "exclusion_reason": "vessel"},
        ],
        **extra,
    )


def dataset(*sessions: SessionExport) -> DatasetExport:
    return DatasetExport(
        name="MS 7T QSM",
        sessions=sessions or (session("MS001", "01"),),
        generated_by={"Name": "qsmreview", "Version": "0.1.0", "Description": "test"},
    )


def test_it_writes_a_dataset_that_reads_back_voxel_for_voxel(tmp_path: Path):
    report = write_dataset(dataset(session("MS001", "01", seed=1), session("MS002", "01", seed=2)), tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    for sub, seed in (("MS001", 1), ("MS002", 2)):
        image = ds.image(sub, "01", "Chimap")
        assert np.array_equal(np.asanyarray(image.dataobj), chi(seed))
        assert image.get_data_dtype() == np.float32
        assert np.allclose(image.affine, AFFINE) and int(image.header["sform_code"]) == 1
        assert np.array_equal(np.asanyarray(ds.image(sub, "01", "desc-consensus_dseg").dataobj), lesions())
        assert np.array_equal(np.asanyarray(ds.image(sub, "01", "desc-reference_dseg").dataobj), reference())
        assert ds.sidecar(sub, "01", "Chimap") == {"Units": "ppm", "qsmreview": {"series": seed}}
        assert ds.sidecar(sub, "01", "desc-reference_dseg")["Sources"] == [
            f"bids::sub-{sub}/ses-01/anat/sub-{sub}_ses-01_desc-consensus_dseg.nii.gz"
        ]
        assert ds.lookup(sub, "01", "desc-consensus_dseg") == [
            {"index": "1", "name": "lesion1"}, {"index": "2", "name": "lesion2"}
        ]
        # unnamed values still get a row
        assert [r["index"] for r in ds.lookup(sub, "01", "desc-reference_dseg")] == ["11", "21", "22"]
    assert ds.description["GeneratedBy"] == [{"Name": "qsmreview", "Version": "0.1.0", "Description": "test"}]
    assert ds.lesion_columns == list(LESION_COLUMNS)
    assert [(r["participant_id"], r["session_id"], r["lesion"]) for r in ds.lesions] == [
        ("sub-MS001", "ses-01", "1"), ("sub-MS001", "ses-01", "2"), ("sub-MS002", "ses-01", "1"), ("sub-MS002", "ses-01", "2")
    ]
    first, second = ds.lesions[:2]
    assert first["raters"] == "rater1;rater2" and first["excluded"] == "false" and first["reference_roi"] == "11"
    assert second["relative_susceptibility_ppm"] == "n/a" and second["excluded"] == "true"
    assert second["exclusion_reason"] == "vessel" and second["n_voxels"] == "n/a"
    assert report.n_lesion_rows == 4 and "lesions.tsv" in report.files


def test_it_sanitises_labels_and_keeps_the_mapping(tmp_path: Path):
    write_dataset(dataset(session("MS-001", "pre op"), session("MS_001", "01"), session("Ü", "1.5")), tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    assert {(r["participant_id"], r["source_code"]) for r in ds.participants} == {
        ("sub-MS001", "MS-001"), ("sub-MS001x2", "MS_001"), ("sub-U", "Ü")
    }
    sessions = (tmp_path / "ds/sub-MS001/sub-MS001_sessions.tsv").read_text().splitlines()
    assert sessions == ["session_id\tsource_label", "ses-preop\tpre op"]
    assert (tmp_path / "ds/sub-U/ses-15/anat/sub-U_ses-15_Chimap.nii.gz").is_file()


@pytest.mark.parametrize(
    "code, label", [("MS001", "MS001"), ("ms-01_a", "ms01a"), ("Müller", "Muller"), ("__", ""), ("P 0/1", "P01")]
)
def test_it_makes_alphanumeric_labels(code: str, label: str):
    assert bids_label(code) == label


def test_it_gives_clashing_and_empty_codes_distinct_labels():
    assert bids_labels(["a-1", "a_1", "A1", "--"]) == {"--": "unnamed", "A1": "A1", "a-1": "a1x2", "a_1": "a1x3"}


def test_it_writes_a_zip_with_one_top_folder(tmp_path: Path):
    write_dataset(dataset(), tmp_path / "study.zip", as_zip=True)

    with zipfile.ZipFile(tmp_path / "study.zip") as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"study"}
        assert "study/sub-MS001/ses-01/anat/sub-MS001_ses-01_Chimap.nii.gz" in names
        zf.extractall(tmp_path / "unzipped")
    ds = read_back(tmp_path / "unzipped/study")
    assert np.array_equal(np.asanyarray(ds.image("MS001", "01", "Chimap").dataobj), chi(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.zip", "unzipped"]


def test_it_reads_volumes_from_paths_and_context_managers(tmp_path: Path):
    path, labels = tmp_path / "in.nii.gz", tmp_path / "labels.nii"
    nib.save(nib.Nifti1Image(chi(3), AFFINE), str(path))
    nib.save(nib.Nifti1Image(lesions(), AFFINE), str(labels))
    opened = []

    @contextmanager
    def local():
        opened.append(True)
        yield labels

    item = SessionExport("S1", "01", chimap=Volume(path), lesions=LabelVolume(local, labels={}))
    write_dataset(dataset(item), tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    assert np.array_equal(np.asanyarray(ds.image("S1", "01", "Chimap").dataobj), chi(3))
    assert np.array_equal(np.asanyarray(ds.image("S1", "01", "desc-consensus_dseg").dataobj), lesions())
    assert opened == [True]


def _failing(after: list[int]):
    @contextmanager
    def source():
        after.append(1)
        raise OSError("storage went away")
        yield  # pragma: no cover

    return source


@pytest.mark.parametrize("as_zip", [False, True])
def test_it_leaves_nothing_behind_when_it_fails_midway(tmp_path: Path, as_zip: bool):
    calls: list[int] = []
    bad = SessionExport("MS002", "01", chimap=Volume(_failing(calls)))
    target = tmp_path / ("ds.zip" if as_zip else "ds")

    with pytest.raises(OSError, match="storage went away"):
        write_dataset(dataset(session("MS001", "01"), bad), target, as_zip=as_zip)

    assert calls == [1]  # it failed after the first session was written
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("as_zip", [False, True])
def test_it_keeps_an_existing_target_intact_when_it_fails(tmp_path: Path, as_zip: bool):
    target = tmp_path / ("ds.zip" if as_zip else "ds")
    write_dataset(dataset(session("OLD", "01")), target, as_zip=as_zip)
    before = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())

    with pytest.raises(OSError):
        write_dataset(dataset(session("NEW", "01"), SessionExport("X", "01", chimap=Volume(_failing([])))), target,
                      as_zip=as_zip, overwrite=True)

    after = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    assert after == before


def test_it_replaces_an_existing_folder_only_when_asked(tmp_path: Path):
    write_dataset(dataset(session("OLD", "01")), tmp_path / "ds")

    with pytest.raises(ExportError, match="exists already"):
        write_dataset(dataset(session("NEW", "01")), tmp_path / "ds")
    write_dataset(dataset(session("NEW", "01")), tmp_path / "ds", overwrite=True)

    assert sorted(p.name for p in (tmp_path / "ds").glob("sub-*")) == ["sub-NEW"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_it_refuses_a_volume_off_the_session_grid(tmp_path: Path):
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.5
    item = SessionExport("S1", "01", chimap=Volume(chi(0), AFFINE), lesions=LabelVolume(lesions(), shifted))

    with pytest.raises(ExportError, match="not on the grid of sub-S1_ses-01_Chimap"):
        write_dataset(dataset(item), tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_segmentation_of_fractions(tmp_path: Path):
    item = SessionExport("S1", "01", lesions=LabelVolume(chi(0), AFFINE))

    with pytest.raises(ExportError, match="integer labels"):
        write_dataset(dataset(item), tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_missing_parent(tmp_path: Path):
    with pytest.raises(ExportError, match="does not exist"):
        write_dataset(dataset(), tmp_path / "nope" / "ds")


def test_it_writes_a_session_without_consensus(tmp_path: Path):
    write_dataset(dataset(SessionExport("S1", "01", chimap=Volume(chi(0), AFFINE))), tmp_path / "ds")

    ds = read_back(tmp_path / "ds")
    assert list(ds.images) == ["sub-S1/ses-01/anat/sub-S1_ses-01_Chimap.nii.gz"]
    assert ds.lesions == []
    assert json.loads((tmp_path / "ds/lesions.json").read_text()) == LESION_COLUMNS


def test_it_names_every_file_by_the_bids_schema(tmp_path: Path):
    """Every file but lesions.tsv/.json (listed in .bidsignore) matches a rule of the BIDS schema
    (bidsschematools, a pinned test dependency: raw rules for Chimap and the tables, derivative
    rules for dseg)."""
    import re

    import bidsschematools.schema as bids_schema
    from bidsschematools import rules

    write_dataset(dataset(session("MS001", "01"), session("MS002", "02")), tmp_path / "ds")

    schema = bids_schema.load_schema()
    raw, _ = rules.regexify_all()
    patterns = [r["regex"] for r in raw]
    for group in ("imaging", "preprocessed_data"):
        patterns += [r["regex"] for r in rules.regexify_filename_rules(schema.rules.files.deriv[group], schema, level=1)]
    ignored = set((tmp_path / "ds" / ".bidsignore").read_text().split())
    names = [p.relative_to(tmp_path / "ds").as_posix() for p in (tmp_path / "ds").rglob("*") if p.is_file()]
    unmatched = [n for n in names if n not in ignored and n != ".bidsignore" and not any(re.match(p, n) for p in patterns)]
    assert unmatched == []
    assert len(names) > 20
