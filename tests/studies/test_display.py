"""Display volumes (qsmreview.studies.display): echo combination, uint8 quantisation, NIfTI bytes.

Expected values are computed by hand in each test, not by the module.
"""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest

from qsmreview.studies.display import (
    NIFTI1_DATA_OFFSET,
    combine_echoes,
    display_nifti_bytes,
    display_nifti_size,
    display_volume,
)


def test_it_combines_echoes_by_root_sum_of_squares():
    data = np.zeros((2, 1, 1, 3), dtype=np.float32)
    data[0, 0, 0] = [1.0, 2.0, 2.0]  # sqrt(1 + 4 + 4) = 3
    data[1, 0, 0] = [0.0, 3.0, 4.0]  # sqrt(0 + 9 + 16) = 5

    rss = combine_echoes(data)

    assert rss.shape == (2, 1, 1) and rss.dtype == np.float32
    assert rss[:, 0, 0].tolist() == [3.0, 5.0]


def test_it_leaves_a_3d_volume_as_it_is_and_refuses_other_dimensions():
    data = np.arange(8, dtype=np.int16).reshape(2, 2, 2)

    assert np.array_equal(combine_echoes(data), data.astype(np.float32))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        combine_echoes(np.zeros((2, 2)))


def test_it_passes_labels_through_unscaled():
    tissue = np.array([0, 1, 2, 3, 3, 2], dtype=np.int16).reshape(1, 2, 3)

    shown = display_volume(tissue)

    assert shown.exact and (shown.slope, shown.inter) == (1.0, 0.0)
    assert shown.data.dtype == np.uint8 and shown.data.tolist() == tissue.tolist()


def test_it_scales_over_the_robust_range_of_nonzero_voxels():
    # 1000 non-zero voxels 1.5, 2.5, ..., 1000.5 and 1000 zeros (background).
    values = np.concatenate([np.arange(1000) + 1.5, np.zeros(1000)]).astype(np.float32)
    data = values.reshape(20, 10, 10)

    shown = display_volume(data)

    # numpy's linear percentile over the non-zero values: position 0.005 * 999 = 4.995 above the
    # first (1.5) -> 6.495, and 0.995 * 999 = 994.005 -> 995.505. The range is widened to 0.
    assert not shown.exact
    assert shown.inter == 0.0
    assert shown.slope == pytest.approx(995.505 / 255, rel=1e-6)
    recovered = shown.data.astype(np.float64) * shown.slope + shown.inter
    inside = data <= 995.505
    assert np.max(np.abs(recovered[inside] - data[inside])) <= shown.slope / 2 + 1e-4
    assert np.all(recovered[~inside] == pytest.approx(255 * shown.slope))  # clipped to the top
    assert np.all(shown.data[data == 0] == 0)  # background stays 0


def test_it_keeps_zero_inside_the_range_of_a_signed_volume():
    # QSM-like: -0.1 .. 0.2 ppm in steps of 0.001 without 0 (300 values), plus background zeros.
    steps = np.array([k for k in range(-100, 201) if k != 0])
    chi = np.concatenate([steps * 0.001, np.zeros(100)]).reshape(4, 10, 10)

    shown = display_volume(chi)

    nonzero = chi[chi != 0]
    lo, hi = np.percentile(nonzero, [0.5, 99.5])  # the two ends, checked by hand below
    assert lo == pytest.approx(-0.1 + 0.005 * 299 * 0.001, abs=1e-9)  # -0.098505
    assert hi == pytest.approx(0.2 - 0.005 * 299 * 0.001, abs=1e-9)
    assert shown.inter == pytest.approx(lo, rel=1e-6)
    assert shown.slope == pytest.approx((hi - lo) / 255, rel=1e-6)
    recovered = shown.data * shown.slope + shown.inter
    inside = (chi >= lo) & (chi <= hi)
    assert np.max(np.abs(recovered[inside] - chi[inside])) <= shown.slope / 2 + 1e-7


def test_it_stores_a_constant_volume_exactly():
    shown = display_volume(np.full((3, 3, 3), 42.5, dtype=np.float32))

    assert np.all(shown.data == 255)
    assert shown.inter == 0.0 and 255 * shown.slope == pytest.approx(42.5, rel=1e-6)


def test_it_stores_a_negative_constant_at_the_bottom_of_the_range():
    shown = display_volume(np.full((2, 2, 2), -3.25))

    assert np.all(shown.data == 0) and shown.inter == -3.25
    assert shown.slope == pytest.approx(3.25 / 255, rel=1e-6)


def test_it_stores_an_empty_volume_as_zeros():
    shown = display_volume(np.zeros((2, 3, 4), dtype=np.float32))

    assert shown.data.shape == (2, 3, 4) and not shown.data.any()
    assert (shown.slope, shown.inter) == (1.0, 0.0)


def test_it_shows_non_finite_voxels_as_zero_and_ignores_them():
    data = np.array([np.nan, np.inf, -np.inf, 0.5, 100.5, 200.5], dtype=np.float32).reshape(1, 1, 6)

    shown = display_volume(data)

    assert shown.data[0, 0, :3].tolist() == [0, 0, 0]
    # Range from the three finite non-zero values only: [0, p99.5] with p99.5 = 100.5 + 0.99 * 100.
    assert shown.slope == pytest.approx(199.5 / 255, rel=1e-6)
    assert shown.data[0, 0, 5] == 255


def test_it_does_not_modify_its_input():
    data = np.linspace(-5, 7, 60).reshape(3, 4, 5)
    before = data.copy()

    display_volume(data)
    combine_echoes(data[..., None])

    assert np.array_equal(data, before)


def test_it_refuses_a_4d_or_complex_volume():
    with pytest.raises(ValueError, match="3-D"):
        display_volume(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="real"):
        display_volume(np.zeros((2, 2, 2), dtype=np.complex64))


def _oblique_affine() -> np.ndarray:
    angle = np.deg2rad(12.0)
    rot = np.array([[-1.0, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.47, 0.47, 1.0])
    affine[:3, 3] = [40.0, -60.0, -20.5]
    return affine


@pytest.mark.parametrize("image_class", [nib.Nifti1Image, nib.Nifti2Image])
def test_it_writes_a_3d_uint8_nifti1_on_the_source_grid(image_class):
    affine = _oblique_affine()  # flipped x, tilted: not RAS
    source = image_class(np.linspace(1, 500, 6 * 5 * 4 * 2, dtype=np.float32).reshape(6, 5, 4, 2), affine)
    source.header.set_qform(affine, code=1)
    source.header.set_sform(affine, code=2)
    shown = display_volume(combine_echoes(np.asanyarray(source.dataobj)))

    data = display_nifti_bytes(shown, source.header, description="RSS of 2 echoes")

    assert len(data) == display_nifti_size((6, 5, 4, 2)) == NIFTI1_DATA_OFFSET + 6 * 5 * 4
    image = nib.Nifti1Image.from_stream(io.BytesIO(data))
    assert image.shape == (6, 5, 4)
    assert image.get_data_dtype() == np.uint8
    assert np.asanyarray(image.dataobj.get_unscaled()).tolist() == shown.data.tolist()
    assert np.allclose(image.affine, affine, atol=1e-5)
    assert np.allclose(image.header.get_qform(), affine, atol=1e-5)
    assert int(image.header["qform_code"]) == 1 and int(image.header["sform_code"]) == 2
    assert len(image.header.extensions) == 0
    raw = nib.Nifti1Header(data[:348])
    assert int(raw["vox_offset"]) == 352 and data[348:352] == b"\0\0\0\0"  # no extension flag
    assert image.header["descrip"].item() == b"RSS of 2 echoes"
    expected = np.sqrt(np.sum(np.asanyarray(source.dataobj, dtype=np.float64) ** 2, axis=3))
    inside = expected <= 255 * shown.slope  # the top 0.5 % is clipped
    assert inside.sum() == 119  # 120 voxels, only the largest above p99.5
    assert np.max(np.abs(image.get_fdata()[inside] - expected[inside])) <= shown.slope / 2 + 1e-3
