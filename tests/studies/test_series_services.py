"""Storing series: validation, the grid rule, versions, checksums, and nothing left on failure."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import FileSystemStorage

from qsmreview.access import system
from qsmreview.errors import ValidationFailed
from qsmreview.studies.models import Series
from qsmreview.studies.services.series import (
    series_create_derived,
    series_create_from_file,
    series_set_current,
)
from qsmreview.studies.storage import series_load, series_local_path, sha256_of_stored
from tests.fixtures.nifti import (
    AFFINE,
    SHAPE,
    files_under,
    magnitude_data,
    mask_data,
    phase_data,
    read_nifti,
    tissue_data,
)

pytestmark = pytest.mark.django_db

SYSTEM = system("tests")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def upload(session, path: Path, kind: str = "t2star_mag", **kwargs) -> Series:
    kwargs.setdefault("by", SYSTEM)
    return series_create_from_file(
        session=session, kind=kind, path=path, original_filename=Path(path).name, **kwargs
    )


@pytest.fixture
def magnitude(session, nifti, media_root, admin) -> Series:
    return upload(session, nifti.magnitude(), by=admin)


def assert_only(media_root: Path, *series: Series) -> None:
    """The database holds exactly these series and storage exactly their files, unchanged."""
    assert sorted(Series.objects.values_list("pk", flat=True)) == sorted(s.pk for s in series)
    stored = files_under(media_root)
    assert len(stored) == len(series)
    for s in series:
        s.refresh_from_db()
        assert sha256_of_stored(s)[0] == s.sha256


# --- storing ---------------------------------------------------------------------------------


def test_it_stores_a_magnitude_with_its_geometry_and_checksum(session, nifti, media_root, admin):
    path = nifti.magnitude()
    series = upload(session, path, by=admin)
    series.refresh_from_db()
    assert series.version == 1 and series.is_current
    assert series.space == "t2star"
    assert series.shape == list(SHAPE)
    assert series.voxel_size_mm == pytest.approx([0.5, 0.5, 1.0])
    np.testing.assert_allclose(series.affine, AFFINE)
    assert series.dtype == "float32"
    assert series.b0_t == 7.0  # the session's field strength
    assert series.b0_direction == pytest.approx([0.0, 0.0, 1.0])
    assert series.blinded is False
    assert series.uploaded_by == admin
    assert series.sha256 == sha256(path)
    assert series.size_bytes == path.stat().st_size
    assert series.provenance["uploaded_by"] == "admin"
    assert series.provenance["original_filename"] == "mag.nii.gz"
    assert series.provenance["conversions"] == []
    # The stored bytes are the uploaded bytes, under a name nibabel recognises.
    assert series.file.name.endswith(".nii.gz")
    assert sha256_of_stored(series) == (sha256(path), path.stat().st_size)
    assert files_under(media_root) == [Path(series.file.path)]
    assert path.exists()  # the caller's file is left alone


def test_it_keeps_an_uncompressed_upload_as_nii(session, nifti, media_root):
    series = upload(session, nifti.magnitude("mag.nii"))
    assert series.file.name.endswith(".nii") and not series.file.name.endswith(".gz")


def test_it_blinds_qsm_by_default_and_honours_an_explicit_choice(session, nifti, media_root, magnitude):
    qsm = upload(session, nifti.volume("qsm.nii.gz", phase_data() * 0.05), kind="qsm")
    assert qsm.blinded is True
    mask = upload(session, nifti.mask(), kind="brain_mask", blinded=True)
    assert mask.blinded is True
    lesions = upload(session, nifti.mask("lesions.nii.gz"), kind="lesion_mask", blinded=False)
    assert lesions.blinded is False


def test_it_records_echo_times_and_b0(session, nifti, media_root):
    series = upload(
        session,
        nifti.phase(echoes=3),
        kind="t2star_phase",
        echo_times_s=[0.004, 0.008, 0.012],
        b0_t=6.98,
    )
    assert series.echo_times_s == [0.004, 0.008, 0.012]
    assert series.b0_t == 6.98
    assert series.shape == list(SHAPE) + [3]


def test_it_stores_scaled_integer_phase_as_radians(session, nifti, media_root):
    path = nifti.integer_phase()
    series = upload(session, path, kind="t2star_phase", echo_times_s=[0.01])
    assert series.dtype == "float32"
    assert series.provenance["original_sha256"] == sha256(path)
    assert series.sha256 != sha256(path)
    assert series.provenance["conversions"] == [
        "scaled integer phase [-4096, 4095] -> radians (stored as float32)"
    ]
    original, _ = read_nifti(path)
    with series_local_path(series) as local:
        stored, affine = read_nifti(local)
    assert stored.dtype == np.float32
    np.testing.assert_allclose(affine, AFFINE)
    # Hand computation: x * pi / 4096.
    np.testing.assert_allclose(stored, original.astype(np.float64) * np.pi / 4096, atol=1e-5)


def test_it_numbers_versions_and_keeps_the_previous_one(session, nifti, media_root, magnitude):
    second = upload(session, nifti.magnitude("mag2.nii.gz", seed=5))
    magnitude.refresh_from_db()
    assert (magnitude.version, magnitude.is_current) == (1, False)
    assert (second.version, second.is_current) == (2, True)
    assert magnitude.file.name != second.file.name
    assert_only(media_root, magnitude, second)
    # An identical re-upload is a new version too (the importer, not the service, deduplicates).
    third = upload(session, nifti.magnitude("mag2.nii.gz", seed=5))
    assert third.version == 3 and third.sha256 == second.sha256


def test_it_counts_versions_per_slot(session, nifti, media_root, magnitude):
    other_label = upload(session, nifti.magnitude("e2.nii.gz"), label="echo-2")
    assert other_label.version == 1 and other_label.is_current
    magnitude.refresh_from_db()
    assert magnitude.is_current


def test_it_makes_an_earlier_version_current_again(session, nifti, media_root, magnitude):
    second = upload(session, nifti.magnitude("mag2.nii.gz", seed=5))
    series_set_current(series=magnitude, by=SYSTEM)
    magnitude.refresh_from_db()
    second.refresh_from_db()
    assert magnitude.is_current and not second.is_current


# --- the grid rule ---------------------------------------------------------------------------


def test_it_rejects_a_phase_on_another_grid_than_the_magnitude(session, nifti, media_root, magnitude):
    path = nifti.phase(shape=(16, 20, 10))
    with pytest.raises(ValidationFailed, match=r"not on the grid of the current .*shape \(16, 20, 10\) vs \(16, 20, 8\)"):
        upload(session, path, kind="t2star_phase", echo_times_s=[0.01])
    assert_only(media_root, magnitude)


def test_it_rejects_a_mask_whose_affine_differs_from_the_magnitude(session, nifti, media_root, magnitude):
    shifted = AFFINE.copy()
    shifted[2, 3] += 0.5
    with pytest.raises(ValidationFailed, match=r"affine .* vs .*tolerance 0.001 mm"):
        upload(session, nifti.mask(affine=shifted), kind="brain_mask")
    assert_only(media_root, magnitude)


def test_it_checks_a_late_magnitude_against_the_phase(session, nifti, media_root):
    phase = upload(session, nifti.phase(), kind="t2star_phase", echo_times_s=[0.01])
    with pytest.raises(ValidationFailed, match="not on the grid of the current T2\\*-weighted phase"):
        upload(session, nifti.magnitude(shape=(16, 20, 6)))
    assert_only(media_root, phase)
    assert upload(session, nifti.magnitude()).space == "t2star"


def test_it_marks_a_t1_on_its_own_grid_for_coregistration(session, nifti, media_root, magnitude):
    native = upload(session, nifti.magnitude("t1.nii.gz", shape=(12, 12, 12), affine=np.diag([1.0, 1, 1, 1])), kind="t1_wmn")
    assert native.space == "native"
    on_grid = upload(session, nifti.magnitude("t1b.nii.gz"), kind="t1_csfn")
    assert on_grid.space == "t2star"


def test_it_stores_a_flair_as_native_before_any_magnitude(session, nifti, media_root):
    assert upload(session, nifti.magnitude("flair.nii.gz"), kind="flair").space == "native"


def test_it_refuses_native_space_for_t2star_kinds(session, nifti, media_root):
    with pytest.raises(ValidationFailed, match="must lie on the T2\\* grid"):
        upload(session, nifti.mask(), kind="brain_mask", space="native")
    assert_only(media_root)


# --- every rejection leaves nothing ----------------------------------------------------------


def _nan(n):
    d = magnitude_data()
    d[1, 1, 1] = np.nan
    return n.volume("nan.nii.gz", d)


def _inf(n):
    d = magnitude_data()
    d[1, 1, 1] = np.inf
    return n.volume("inf.nii.gz", d)


def _not_binary(n):
    d = mask_data()
    d[0, 0, 0] = 3
    return n.volume("m.nii.gz", d)


def _labels(n):
    d = tissue_data()
    d[0, 0, 0] = 4
    return n.volume("t.nii.gz", d)


REJECTIONS = [
    pytest.param(lambda n: n.text(), "t2star_mag", {}, "not a NIfTI file", id="text"),
    pytest.param(lambda n: n.truncated_gzip(), "t2star_mag", {}, "truncated or corrupt", id="truncated-gzip"),
    pytest.param(lambda n: n.analyze(), "t2star_mag", {}, "Analyze 7.5 image", id="analyze"),
    pytest.param(lambda n: n.volume("2d.nii.gz", np.ones((5, 5), np.float32)), "t2star_mag", {}, "image is 2-D", id="2d"),
    pytest.param(lambda n: n.volume("5d.nii.gz", np.ones((3, 3, 3, 2, 2), np.float32)), "t2star_mag", {}, "image is 5-D", id="5d"),
    pytest.param(lambda n: n.magnitude(echoes=2), "brain_mask", {}, "only multi-echo T2\\* magnitude and phase may be 4-D", id="4d-mask"),
    pytest.param(lambda n: n.phase(echoes=4), "t2star_phase", {"echo_times_s": [0.004, 0.008, 0.012]}, "3 echo time\\(s\\) given but the image has 4", id="te-count"),
    pytest.param(lambda n: n.phase(), "t2star_phase", {}, "needs its echo time", id="phase-without-te"),
    pytest.param(_nan, "t2star_mag", {}, "1 NaN", id="nan"),
    pytest.param(_inf, "t2star_mag", {}, "1 infinite", id="inf"),
    pytest.param(lambda n: n.volume("p.nii.gz", phase_data() * 2), "t2star_phase", {"echo_times_s": [0.01]}, "neither radians within", id="phase-range"),
    pytest.param(lambda n: n.volume("z.nii.gz", magnitude_data(), zooms=(0.5, 0.0, 1.0)), "t2star_mag", {}, "voxel size of 0", id="voxel-0"),
    pytest.param(lambda n: n.volume("a.nii.gz", magnitude_data(), np.diag([0.5, 0.5, 40.0, 1])), "t2star_mag", {}, "outside \\[0.05, 10.0\\] mm", id="voxel-absurd"),
    pytest.param(_not_binary, "lesion_mask", {}, "must be binary", id="mask-not-binary"),
    pytest.param(_labels, "tissue", {}, "FSL FAST codes 0-3", id="tissue-range"),
    pytest.param(lambda n: n.magnitude(), "dwi", {}, "unknown series kind", id="kind"),
    pytest.param(lambda n: n.magnitude(), "t2star_mag", {"b0_t": 0.0}, r"B0: must be a field strength in tesla \(0.1-20 T\), got 0", id="b0"),
]


@pytest.mark.parametrize("make, kind, kwargs, message", REJECTIONS)
def test_it_rejects_and_stores_nothing(session, nifti, media_root, magnitude, make, kind, kwargs, message):
    before = Series.objects.get(pk=magnitude.pk)
    with pytest.raises(ValidationFailed, match=message):
        upload(session, make(nifti), kind=kind, **kwargs)
    assert_only(media_root, magnitude)
    assert magnitude.is_current and magnitude.version == 1
    assert magnitude.sha256 == before.sha256


def test_it_deletes_the_stored_file_when_the_row_cannot_be_saved(session, nifti, media_root, magnitude):
    with pytest.raises(TypeError):
        upload(session, nifti.magnitude("m2.nii.gz"), provenance={"not json": object()})
    assert_only(media_root, magnitude)
    magnitude.refresh_from_db()
    assert magnitude.is_current


# --- derived series --------------------------------------------------------------------------


def test_it_stores_a_derived_qsm_with_provenance(session, media_root, magnitude):
    chi = (phase_data() * 0.02).astype(np.float64)
    out = series_create_derived(by=SYSTEM,
        session=session,
        kind="qsm",
        data=chi,
        affine=AFFINE,
        derived_from=[magnitude],
        provenance={"method": "test", "inputs": [magnitude.sha256]},
    )
    assert (out.version, out.is_current, out.blinded, out.space) == (1, True, True, "t2star")
    assert out.dtype == "float32"
    assert out.provenance == {"method": "test", "inputs": [magnitude.sha256]}
    assert list(out.derived_from.all()) == [magnitude]
    loaded = series_load(out)
    np.testing.assert_allclose(loaded.get_fdata(), chi, atol=1e-6)
    assert out.sha256 == sha256_of_stored(out)[0]


def test_it_can_store_a_derived_version_without_making_it_current(session, media_root, magnitude):
    first = series_create_derived(by=SYSTEM, session=session, kind="brain_mask", data=mask_data() > 0, affine=AFFINE, provenance={})
    second = series_create_derived(by=SYSTEM,
        session=session, kind="brain_mask", data=mask_data(), affine=AFFINE, provenance={}, make_current=False
    )
    first.refresh_from_db()
    assert first.is_current and not second.is_current and second.version == 2
    assert first.dtype == "uint8"


def test_it_rejects_a_derived_mask_that_is_not_binary(session, media_root, magnitude):
    with pytest.raises(ValidationFailed, match="must be binary"):
        series_create_derived(by=SYSTEM, session=session, kind="brain_mask", data=tissue_data(), affine=AFFINE, provenance={})
    assert_only(media_root, magnitude)


def test_it_rejects_a_derived_volume_off_the_grid(session, media_root, magnitude):
    with pytest.raises(ValidationFailed, match="not on the grid"):
        series_create_derived(by=SYSTEM, session=session, kind="qsm", data=np.zeros((4, 4, 4), np.float32), affine=AFFINE, provenance={})
    assert_only(media_root, magnitude)


# --- reading back from remote storage --------------------------------------------------------


class NoPathStorage(FileSystemStorage):
    """Local files behind a storage that, like S3, has no local path."""

    def path(self, name: str) -> str:
        # FileSystemStorage itself needs paths; everyone else is told there are none.
        if sys._getframe(1).f_globals.get("__name__", "").startswith("django.core.files.storage"):
            return super().path(name)
        raise NotImplementedError("remote storage")


def test_it_streams_a_local_copy_when_the_storage_has_no_path(settings, session, nifti, media_root):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.NoPathStorage"},
    }
    path = nifti.magnitude()
    series = upload(session, path)
    with series_local_path(series) as local:
        assert local.name.endswith(".nii.gz")
        assert not str(local).startswith(str(media_root))
        assert sha256(local) == sha256(path)
    assert not local.exists()
    np.testing.assert_allclose(series_load(series).get_fdata(), magnitude_data(), atol=1e-6)


def test_it_applies_the_grid_rule_from_the_header_before_reading_any_value(
    session, magnitude, nifti, media_root, monkeypatch
):
    import nibabel.arrayproxy

    path = nifti.mask("mask-10.nii.gz", shape=(16, 20, 10))

    def forbidden(*args, **kwargs):
        raise AssertionError("image data was read")

    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__getitem__", forbidden)
    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__array__", forbidden)

    with pytest.raises(ValidationFailed, match=r"not on the grid of the current .*shape \(16, 20, 10\) vs \(16, 20, 8\)"):
        upload(session, path, kind="brain_mask")
    assert_only(media_root, magnitude)
