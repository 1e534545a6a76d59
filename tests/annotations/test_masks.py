"""Mask uploads: what is accepted, what is refused (and how it is said), and the canonical stored file."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib

import nibabel as nib
import numpy as np
import pytest

from qsmreview.annotations import masks
from qsmreview.annotations.masks import canonical_mask_bytes, crc32_zeros, validate_mask
from qsmreview.errors import TooLarge, ValidationFailed
from tests.annotations.conftest import mask_array, nifti_of
from tests.fixtures.nifti import AFFINE, SHAPE


def check(data_bytes: bytes):
    return validate_mask(data_bytes, shape=SHAPE, affine=AFFINE)


def refused(data_bytes: bytes, match: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed, match=match) as info:
        check(data_bytes)
    assert info.value.field == "mask"
    return info.value


def stored_image(content: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(content))


def test_it_stores_a_binary_mask_as_uint8_gzip_with_the_t2star_affine_as_sform_and_qform() -> None:
    data = mask_array((1, 2, 3), (4, 5, 6))

    mask = check(nifti_of(data))

    assert mask.content[:2] == b"\x1f\x8b"
    assert mask.sha256 == hashlib.sha256(mask.content).hexdigest()
    assert mask.size_bytes == len(mask.content)
    image = stored_image(mask.content)
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), data)
    np.testing.assert_array_equal(mask.data, data)
    sform, sform_code = image.get_sform(coded=True)
    qform, qform_code = image.get_qform(coded=True)
    assert (int(sform_code), int(qform_code)) == (1, 1)
    np.testing.assert_allclose(sform, AFFINE)
    np.testing.assert_allclose(qform, AFFINE, atol=1e-6)
    assert len(image.header.extensions) == 0


def test_it_binarises_pen_values_up_to_255() -> None:
    data = mask_array((1, 1, 1), value=2)
    data[2, 2, 2] = 255

    mask = check(nifti_of(data))

    assert sorted(np.unique(mask.data).tolist()) == [0, 1]
    assert int(mask.data.sum()) == 2


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_it_accepts_integer_and_whole_float_values_plain_or_gzip_and_stores_the_same_bytes(dtype) -> None:
    data = mask_array((3, 4, 5), (3, 4, 6), dtype=dtype)

    from_gzip = check(nifti_of(data))
    from_plain = check(nifti_of(data, gz=False))
    reference = check(nifti_of(mask_array((3, 4, 5), (3, 4, 6))))

    assert from_gzip.sha256 == from_plain.sha256 == reference.sha256
    assert from_gzip.content == reference.content


def test_it_accepts_an_affine_within_a_micrometre_and_stores_the_t2star_one() -> None:
    nearly = AFFINE.copy()
    nearly[0, 3] += 0.0004

    mask = check(nifti_of(mask_array((0, 0, 0)), nearly))

    np.testing.assert_array_equal(stored_image(mask.content).get_sform(), AFFINE)


def test_it_refuses_a_mask_of_another_shape_saying_both_shapes() -> None:
    refused(nifti_of(np.zeros((16, 20, 6), np.uint8)), r"^mask shape 16x20x6 is not the T2\* grid 16x20x8$")


def test_it_refuses_a_mask_with_another_affine() -> None:
    shifted = AFFINE.copy()
    shifted[2, 3] += 1.0
    refused(nifti_of(mask_array((0, 0, 0)), shifted), r"mask affine .* is not the T2\* grid's .*tolerance 0.001 mm")


def test_it_refuses_nan_negative_too_large_and_fractional_values() -> None:
    nan = mask_array(dtype=np.float32)
    nan[1, 1, 1] = np.nan
    refused(nifti_of(nan), r"non-finite values \(1 NaN, 0 infinite\)")
    refused(nifti_of(mask_array((1, 1, 1), value=-1, dtype=np.int16)), r"negative values")
    refused(nifti_of(mask_array((1, 1, 1), value=256, dtype=np.int16)), r"values up to 256")
    half = mask_array(dtype=np.float32)
    half[1, 1, 1] = 0.5
    refused(nifti_of(half), r"whole numbers 0..255")


def test_it_refuses_what_is_not_nifti_and_4d_volumes() -> None:
    refused(b"hello, this is not an image", r"not a NIfTI file")
    refused(gzip.compress(b"x" * 600), r"not a NIfTI file")
    refused(nifti_of(np.zeros((*SHAPE, 2), np.uint8)), r"^mask is 4-D \(shape 16x20x8x2\); it must be a 3-D volume")


def test_it_refuses_a_header_declaring_more_voxels_than_the_limit_before_reading_data(settings) -> None:
    settings.QSMREVIEW_MAX_VOXELS = 1000  # the grid has 2560
    refused(nifti_of(mask_array((1, 1, 1))), r"volume too large: .*QSMREVIEW_MAX_VOXELS")


def test_it_refuses_an_upload_over_the_size_limit(settings) -> None:
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 100
    with pytest.raises(TooLarge, match="larger than the limit"):
        check(nifti_of(mask_array((1, 1, 1))))


def test_it_does_not_keep_the_uploads_extensions() -> None:
    image = nib.Nifti1Image(mask_array((1, 1, 1)), AFFINE)
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment from the viewer"))
    buf = io.BytesIO()
    buf.write(image.to_bytes())

    mask = check(gzip.compress(buf.getvalue()))

    assert len(stored_image(mask.content).header.extensions) == 0


def nibabel_written(data: np.ndarray, affine: np.ndarray) -> bytes:
    """The stored file's uncompressed bytes as nibabel writes them (the former canonical writer)."""
    image = nib.Nifti1Image(np.asarray(data, dtype=np.uint8), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return image.to_bytes()


def test_it_writes_the_header_and_voxels_nibabel_writes_byte_for_byte() -> None:
    oblique = np.array([[0.0, -0.47, 0.05, 90.0], [0.47, 0.0, 0.0, -80.0], [0.0, 0.02, 1.0, -40.0], [0, 0, 0, 1]])
    data = mask_array((1, 2, 3), (15, 19, 7), (0, 0, 0))

    for affine in (AFFINE, oblique):
        content = canonical_mask_bytes(data, affine)

        assert gzip.decompress(content) == nibabel_written(data, affine)
        assert content[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0: equal masks, equal SHA-256
        assert canonical_mask_bytes(np.asfortranarray(data), affine) == content


def test_it_stores_the_same_bytes_for_the_same_drawing_whatever_the_pen_values() -> None:
    pens = mask_array((1, 2, 3), (4, 5, 6), value=7)
    pens[4, 5, 6] = 200

    assert check(nifti_of(pens)).sha256 == check(nifti_of(mask_array((1, 2, 3), (4, 5, 6)))).sha256


@pytest.mark.parametrize("piece_bytes", [1000, 2560, 4096])
def test_it_deflates_in_pieces_that_read_back_as_one_file(monkeypatch, piece_bytes) -> None:
    # 2560 voxels in pieces of 1000 (a short last one), exactly one, or one short one.
    monkeypatch.setattr(masks, "_PIECE_BYTES", piece_bytes)
    data = mask_array((0, 0, 0), (7, 9, 3), (15, 19, 7))  # in the first, a middle and the last piece

    content = canonical_mask_bytes(data, AFFINE)

    assert gzip.decompress(content) == nibabel_written(data, AFFINE)  # the CRC and size check too
    assert gzip.decompress(canonical_mask_bytes(np.zeros(SHAPE, np.uint8), AFFINE))[352:] == bytes(2560)


def test_it_computes_the_crc_of_zeros_without_reading_them() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 1000, 65536):
        for crc in [0, 0xFFFFFFFF, *rng.integers(0, 2**32, 5, dtype=np.uint64).tolist()]:
            assert crc32_zeros(n, int(crc)) == zlib.crc32(bytes(n), int(crc))


def test_a_stored_mask_of_a_few_lesions_on_the_full_grid_is_a_few_kilobytes() -> None:
    shape = (384, 384, 90)
    data = np.zeros(shape, np.uint8)
    data[100:108, 100:108, 40:44] = 1
    data[250:256, 200:207, 60:63] = 1
    data[383, 383, 89] = 1  # the last voxel: in the short last piece

    content = canonical_mask_bytes(data, AFFINE)

    assert len(content) < 20_000  # 13.3 MB of voxels, almost all zero
    np.testing.assert_array_equal(np.asanyarray(nib.Nifti1Image.from_bytes(gzip.decompress(content)).dataobj), data)


def test_it_applies_the_headers_scaling_before_checking_values() -> None:
    image = nib.Nifti1Image(mask_array((1, 1, 1), (2, 2, 2), dtype=np.int16), AFFINE)
    image.header.set_slope_inter(3.0, 0.0)  # stored 1 means 3: a pen value
    mask = check(gzip.compress(image.to_bytes()))
    assert int(mask.data.sum()) == 2

    image.header.set_slope_inter(300.0, 0.0)  # stored 1 means 300
    refused(gzip.compress(image.to_bytes()), r"found values up to 300")
    image.header.set_slope_inter(0.5, 0.0)  # stored 1 means 0.5
    refused(gzip.compress(image.to_bytes()), r"whole numbers 0..255")


def test_it_refuses_a_truncated_or_corrupt_data_block_naming_the_mask() -> None:
    whole = nifti_of(mask_array((1, 1, 1)), gz=False)
    refused(whole[:-100], r"^the mask's data cannot be read \(truncated or corrupt file\): .* holds only 2,460 of its 2,560")
    stored = gzip.compress(whole, compresslevel=0)  # not compressed: cut inside the data block
    refused(stored[:-200], r"^the mask's data cannot be read \(truncated or corrupt file\): .* holds only")
    corrupt = bytearray(stored)
    corrupt[-10] ^= 0xFF  # a data byte: the CRC at the end no longer matches
    refused(bytes(corrupt), r"^the mask's data cannot be read \(truncated or corrupt file\)")


def test_it_reads_a_gzip_file_of_several_members() -> None:
    whole = nifti_of(mask_array((3, 4, 5)), gz=False)

    mask = check(gzip.compress(whole[:1000], mtime=0) + gzip.compress(whole[1000:], mtime=0))

    assert mask.sha256 == check(nifti_of(mask_array((3, 4, 5)))).sha256


def test_the_validated_mask_is_read_only_and_a_boolean_view_of_itself() -> None:
    mask = check(nifti_of(mask_array((3, 4, 5), value=9)))

    assert not mask.data.flags.writeable
    assert mask.voxels.dtype == np.bool_ and int(mask.voxels.sum()) == 1
    assert np.shares_memory(mask.voxels, mask.data)


def test_it_reads_the_same_mask_whichever_inflater_is_installed(monkeypatch) -> None:
    uploads = [
        nifti_of(mask_array((1, 2, 3), (4, 5, 6))),
        gzip.compress(nifti_of(mask_array((3, 4, 5)), gz=False)[:1000]) + gzip.compress(nifti_of(mask_array((3, 4, 5)), gz=False)[1000:]),
    ]
    fast = [check(u).sha256 for u in uploads]

    monkeypatch.setattr(masks, "_inflate", zlib)

    assert [check(u).sha256 for u in uploads] == fast
    corrupt = bytearray(gzip.compress(nifti_of(mask_array((1, 1, 1)), gz=False), compresslevel=0))
    corrupt[-10] ^= 0xFF
    refused(bytes(corrupt), r"^the mask's data cannot be read \(truncated or corrupt file\)")
