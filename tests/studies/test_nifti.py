"""validate_nifti: every rule, with the message a user sees. No database involved."""

from __future__ import annotations

import re

import numpy as np
import pytest

from qsmreview.errors import ValidationFailed
from qsmreview.studies import nifti as nifti_module
from qsmreview.studies.nifti import check_same_grid, load_phase_radians, same_grid, validate_nifti
from tests.fixtures.nifti import AFFINE, ECHO_TIMES_S, SHAPE, magnitude_data, mask_data, phase_data
from tests.studies.declared import CUBE_30000, PHASE_512_1024, SLICE_23170, declaring


def rejects(path, kind: str, match: str, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed, match=match) as info:
        validate_nifti(path, kind=kind, **kwargs)
    return info.value


def test_it_accepts_a_magnitude_and_reports_its_geometry(nifti):
    info = validate_nifti(nifti.magnitude(), kind="t2star_mag")
    assert info.format == "NIfTI-1"
    assert info.compressed
    assert info.shape == SHAPE
    assert info.voxel_size_mm == pytest.approx((0.5, 0.5, 1.0))
    np.testing.assert_allclose(info.affine, AFFINE)
    assert info.dtype == "float32"
    assert info.n_echoes == 1
    assert info.phase_conversion is None
    assert info.b0_direction == pytest.approx((0.0, 0.0, 1.0))


def test_it_accepts_nifti2_and_uncompressed_files_whatever_their_name(nifti):
    path = nifti.volume("x.nii", magnitude_data(), nifti2=True)
    renamed = path.rename(path.with_name("tmpab12.upload"))
    info = validate_nifti(renamed, kind="t2star_mag")
    assert info.format == "NIfTI-2"
    assert not info.compressed


def test_it_accepts_multi_echo_magnitude_with_matching_echo_times(nifti):
    info = validate_nifti(
        nifti.magnitude(echoes=4), kind="t2star_mag", echo_times_s=[0.004, 0.008, 0.012, 0.016]
    )
    assert info.shape == SHAPE + (4,)
    assert info.n_echoes == 4


def test_it_rejects_a_text_file(nifti):
    rejects(nifti.text(), "t2star_mag", "not a NIfTI file")


def test_it_rejects_an_empty_file(nifti):
    rejects(nifti.text("empty.nii", ""), "t2star_mag", "not a NIfTI file")


def test_it_rejects_a_truncated_gzip(nifti):
    rejects(nifti.truncated_gzip(), "t2star_mag", "truncated or corrupt")


def test_it_rejects_gzip_of_something_else(nifti):
    rejects(nifti.gzip_bytes("junk.nii.gz", b"hello" * 200), "t2star_mag", "not a NIfTI file")


def test_it_rejects_analyze_even_though_nibabel_reads_it(nifti):
    rejects(nifti.analyze(), "t2star_mag", "Analyze 7.5 image, not NIfTI")


def test_it_rejects_2d(nifti):
    rejects(nifti.volume("flat.nii.gz", np.ones((8, 8), np.float32)), "t2star_mag", r"image is 2-D \(shape \(8, 8\)\)")


def test_it_rejects_5d(nifti):
    data = np.ones((4, 4, 4, 2, 2), np.float32)
    rejects(nifti.volume("5d.nii.gz", data), "t2star_mag", "image is 5-D .* at most 4-D")


def test_it_rejects_4d_for_a_kind_without_echoes(nifti):
    rejects(nifti.magnitude(echoes=2), "flair", "only multi-echo T2\\* magnitude and phase may be 4-D")


def test_it_rejects_an_echo_time_count_not_matching_the_4th_dimension(nifti):
    err = rejects(
        nifti.phase(echoes=3), "t2star_phase", r"2 echo time\(s\) given but the image has 3 echo",
        echo_times_s=[0.004, 0.008],
    )
    assert err.field == "echo_times_s"


def test_it_requires_echo_times_for_phase(nifti):
    rejects(nifti.phase(), "t2star_phase", "phase series needs its echo time")


def test_it_rejects_echo_times_in_milliseconds(nifti):
    rejects(nifti.phase(), "t2star_phase", "milliseconds", echo_times_s=[20.0])


def test_it_rejects_nan(nifti):
    data = magnitude_data()
    data[3, 4, 5] = np.nan
    rejects(nifti.volume("nan.nii.gz", data), "t2star_mag", r"non-finite values \(1 NaN, 0 infinite\)")


def test_it_rejects_inf(nifti):
    data = magnitude_data()
    data[0, 0, 0] = np.inf
    data[1, 0, 7] = -np.inf
    rejects(nifti.volume("inf.nii.gz", data), "qsm", r"non-finite values \(0 NaN, 2 infinite\)")


def test_it_rejects_nan_in_a_later_echo(nifti):
    data = magnitude_data(echoes=3)
    data[2, 2, 2, 2] = np.nan
    rejects(nifti.volume("nan4d.nii.gz", data), "t2star_mag", "1 NaN")


def test_it_rejects_phase_out_of_range(nifti):
    data = phase_data() * 1.5
    err = rejects(nifti.volume("big.nii.gz", data), "t2star_phase", "neither radians within", echo_times_s=[0.01])
    assert "phase" in err.message


def test_it_rejects_non_integer_phase_out_of_range(nifti):
    data = phase_data().astype(np.float32)
    data[0, 0, 0], data[1, 0, 0] = -100.0, 100.0  # whole-number extremes, fractional interior
    rejects(nifti.volume("frac.nii.gz", data), "t2star_phase", "not whole numbers", echo_times_s=[0.01])


def test_it_recognises_scaled_integer_phase(nifti):
    path = nifti.integer_phase()
    info = validate_nifti(path, kind="t2star_phase", echo_times_s=[0.01])
    assert info.phase_conversion == "scaled integer phase [-4096, 4095] -> radians"
    assert info.needs_phase_conversion
    radians, _ = load_phase_radians(path, info.phase_conversion)
    assert radians.dtype == np.float32
    assert radians.min() >= -np.pi and radians.max() <= np.pi
    # -4096 is -pi, 2048 is pi/2 (hand computation: x * pi / 4096).
    assert radians.flat[0] == pytest.approx(-np.pi, abs=1e-6)


def test_it_accepts_phase_in_radians_without_conversion(nifti):
    info = validate_nifti(nifti.phase(echoes=2), kind="t2star_phase", echo_times_s=[0.004, 0.008])
    assert info.phase_conversion == "radians"
    assert not info.needs_phase_conversion


def test_it_rejects_voxel_size_zero(nifti):
    path = nifti.volume("zero.nii.gz", magnitude_data(), zooms=(0.0, 0.5, 1.0))
    rejects(path, "t2star_mag", r"degenerate geometry: voxel size \(0.0, 0.5, 1.0\) mm in the header")


def test_it_rejects_an_absurd_voxel_size(nifti):
    path = nifti.volume("huge.nii.gz", magnitude_data(), np.diag([50.0, 0.5, 1.0, 1.0]))
    rejects(path, "t2star_mag", r"voxel size \(50.0, 0.5, 1.0\) mm is outside \[0.05, 10.0\] mm")


def test_it_rejects_a_degenerate_affine(nifti):
    affine = np.array([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    rejects(nifti.volume("parallel.nii.gz", magnitude_data(), affine), "t2star_mag", "degenerate geometry")


def test_it_accepts_a_binary_mask_stored_as_float(nifti):
    path = nifti.volume("mask.nii.gz", mask_data().astype(np.float32))
    info = validate_nifti(path, kind="brain_mask")
    assert info.integer_valued


def test_it_rejects_a_mask_that_is_not_binary(nifti):
    data = mask_data()
    data[0, 0, 0] = 2
    rejects(nifti.volume("mask2.nii.gz", data), "lesion_mask", r"must be binary \(0/1\); found values 0, 1, 2")


def test_it_rejects_a_mask_with_fractions(nifti):
    data = mask_data().astype(np.float32) * 0.5
    rejects(nifti.volume("soft.nii.gz", data), "brain_mask", "brain mask must be integer-valued")


def test_it_accepts_tissue_labels_0_to_3(nifti):
    validate_nifti(nifti.tissue(), kind="tissue")


def test_it_rejects_tissue_labels_out_of_range(nifti):
    from tests.fixtures.nifti import tissue_data

    data = tissue_data()
    data[0, 0, 0] = 5
    rejects(nifti.volume("t5.nii.gz", data), "tissue", r"FSL FAST codes 0-3 .* found 0, 1, 2, 3, 5")


def test_it_rejects_an_unknown_kind(nifti):
    err = rejects(nifti.magnitude(), "dwi", "unknown series kind 'dwi'")
    assert err.field == "kind"


def test_it_compares_grids_within_a_micrometre():
    shifted = AFFINE.copy()
    shifted[0, 3] += 5e-4
    assert same_grid(SHAPE, shifted, SHAPE, AFFINE)
    shifted[0, 3] += 1e-2
    assert not same_grid(SHAPE, shifted, SHAPE, AFFINE)
    with pytest.raises(ValidationFailed, match=r"shape \(16, 20, 9\) vs \(16, 20, 8\)"):
        check_same_grid((16, 20, 9), AFFINE, SHAPE, AFFINE, what="mask", reference="the magnitude")


# --- declared size (issue #15 points 7 and 9): refused from the header, before any data -----


@pytest.fixture
def no_data_reads(monkeypatch):
    """Make any read of image data fail the test: the refusals below must come from the header."""
    import nibabel.arrayproxy

    def forbidden(*args, **kwargs):
        raise AssertionError("image data was read")

    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__getitem__", forbidden)
    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__array__", forbidden)
    monkeypatch.setattr(nifti_module, "_scan_values", forbidden)


@pytest.mark.parametrize(
    ("declared", "kind", "echo_times_s", "message"),
    [
        (
            SLICE_23170, "t2star_mag", None,
            "volume too large: the header declares 23170 x 23170 x 1 float32 = 536,848,900 voxels "
            "(2.0 GiB unpacked), more than the limit of 134,217,728 voxels (QSMREVIEW_MAX_VOXELS)",
        ),
        (
            PHASE_512_1024, "t2star_phase", [0.01],
            "volume too large: the header declares 512 x 512 x 1024 int16 = 268,435,456 voxels "
            "(512.0 MiB unpacked), more than the limit of 134,217,728 voxels (QSMREVIEW_MAX_VOXELS)",
        ),
        (
            CUBE_30000, "t2star_mag", None,
            "volume too large: the header declares 30000 x 30000 x 30000 float32 = "
            "27,000,000,000,000 voxels (100582.8 GiB unpacked), more than the limit of "
            "134,217,728 voxels (QSMREVIEW_MAX_VOXELS)",
        ),
    ],
    ids=["23170-slice", "512x512x1024-phase", "30000-cube"],
)
@pytest.mark.parametrize("name", ["huge.nii.gz", "huge.nii"])
def test_it_refuses_a_huge_declared_volume_from_the_header_alone(
    tmp_path, no_data_reads, declared, kind, echo_times_s, message, name
):
    path = declaring(tmp_path / name, *declared)

    err = rejects(path, kind, re.escape(message), echo_times_s=echo_times_s)

    assert err.message == message
    assert err.field == "file"


def test_it_counts_a_nifti2_declaration_beyond_int32_without_overflow(tmp_path, no_data_reads):
    path = declaring(tmp_path / "n2.nii.gz", (2**31, 2**31, 2**31), np.float64, nifti2=True)

    rejects(
        path, "qsm",
        re.escape(f"{2**31} x {2**31} x {2**31} float64 = {2**93:,} voxels"),
    )


def test_it_refuses_a_declared_volume_over_the_unpacked_size_limit(tmp_path, no_data_reads, settings):
    settings.QSMREVIEW_MAX_UNPACKED_BYTES = 64 * 1024**2
    path = declaring(tmp_path / "f64.nii.gz", (256, 256, 256), np.float64)  # 16.8 M voxels: allowed

    rejects(
        path, "qsm",
        re.escape(
            "volume too large: the header declares 256 x 256 x 256 float64 = 16,777,216 voxels "
            "(128.0 MiB unpacked), more than the limit of 64.0 MiB (67,108,864 bytes, "
            "QSMREVIEW_MAX_UNPACKED_BYTES)"
        ),
    )


def test_it_counts_all_echoes_against_the_voxel_limit(nifti, settings):
    path = nifti.magnitude(echoes=4)  # 16 x 20 x 8 x 4 = 10,240 voxels
    settings.QSMREVIEW_MAX_VOXELS = 10_240
    assert validate_nifti(path, kind="t2star_mag", echo_times_s=ECHO_TIMES_S).shape == SHAPE + (4,)

    settings.QSMREVIEW_MAX_VOXELS = 10_239
    rejects(path, "t2star_mag", r"16 x 20 x 8 x 4 float32 = 10,240 voxels .* limit of 10,239 voxels", echo_times_s=ECHO_TIMES_S)


def test_it_takes_the_limits_as_arguments_too(nifti):
    rejects(nifti.magnitude(), "t2star_mag", r"limit of 1,000 voxels", max_voxels=1000)
    rejects(nifti.magnitude(), "t2star_mag", r"limit of 1000 bytes", max_unpacked_bytes=1000)


def test_it_refuses_an_uncompressed_file_shorter_than_its_header_declares_before_reading(
    tmp_path, no_data_reads
):
    path = declaring(tmp_path / "short.nii", (64, 64, 64), np.float32, payload=b"\0" * 1000)

    rejects(
        path, "t2star_mag",
        re.escape(
            "the header declares 64 x 64 x 64 float32 = 262,144 voxels (1.0 MiB unpacked), but the "
            "file holds only 1,000 of its 1,048,576 bytes of data: truncated or corrupt file, or a "
            "wrong header"
        ),
    )


def test_it_says_how_much_data_a_short_gzip_holds_instead_of_whoops(tmp_path):
    path = declaring(tmp_path / "short.nii.gz", (64, 64, 64), np.float32, payload=b"\0" * 1000)

    err = rejects(path, "t2star_mag", "but the file holds only 1,000 of its 1,048,576 bytes of data")

    assert "Whoops" not in err.message


def test_it_says_how_much_data_a_truncated_gzip_stream_holds(nifti):
    err = rejects(nifti.truncated_gzip(), "t2star_mag", "truncated or corrupt")

    # 16 x 20 x 8 float32 = 10,240 bytes declared; the cut stream ends before them.
    assert "the header declares 16 x 20 x 8 float32 = 2,560 voxels" in err.message
    assert "of its 10,240 bytes of data" in err.message


@pytest.mark.parametrize(
    ("make", "kind", "kwargs", "message"),
    [
        (lambda n: n.magnitude(echoes=2), "flair", {}, "only multi-echo"),
        (lambda n: n.phase(echoes=3), "t2star_phase", {"echo_times_s": [0.01]}, "1 echo time"),
        (lambda n: n.volume("c.nii.gz", np.ones(SHAPE, np.complex64)), "qsm", {}, "not a real number type"),
        (lambda n: n.volume("v.nii.gz", magnitude_data(), np.diag([50.0, 0.5, 1.0, 1.0])), "qsm", {}, "voxel size"),
    ],
    ids=["4d-kind", "echo-count", "complex", "voxel-size"],
)
def test_it_checks_shape_dtype_and_geometry_before_reading_values(nifti, no_data_reads, make, kind, kwargs, message):
    path = make(nifti)  # written before the fixture's patch matters: writing reads no proxy

    rejects(path, kind, message, **kwargs)


def test_it_scans_values_in_bounded_slabs_even_within_one_slice(nifti, monkeypatch):
    import nibabel.arrayproxy

    monkeypatch.setattr(nifti_module, "_SLAB_VOXELS", 64)  # 4 rows of 16 voxels per read
    sizes = []
    original = nibabel.arrayproxy.ArrayProxy.__getitem__

    def spy(proxy, index):
        out = original(proxy, index)
        sizes.append(np.asarray(out).size)
        return out

    monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, "__getitem__", spy)
    data = magnitude_data()
    data[3, 19, 7] = np.nan  # last row band of the last slice

    rejects(nifti.volume("nan.nii.gz", data), "t2star_mag", r"\(1 NaN, 0 infinite\)")

    assert max(sizes) == 64
    assert sum(sizes) == 16 * 20 * 8
