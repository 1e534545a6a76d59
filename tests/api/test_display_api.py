"""GET/HEAD /api/v1/series/<id>/display/: the viewer's 3-D uint8 volume of a series.

Visibility is the series' own (raters: non-blinded series of assigned sessions); the volume is
computed once per file and cached in the storage under ``display/``.
"""

from __future__ import annotations

import gzip
import hashlib
import io

import nibabel as nib
import numpy as np
import pytest
from django.core.files.base import ContentFile

from qsmreview.studies.models import Series, Session
from qsmreview.studies.services import display as display_service
from tests.api.world import World, as_bytes, make_series
from tests.fixtures.nifti import AFFINE, SHAPE, magnitude_data, tissue_data


def url(series: Series) -> str:
    return f"/api/v1/series/{series.pk}/display/"


def stored_series(session: Session, kind: str, data: np.ndarray, **fields) -> Series:
    """A Series row whose stored file holds ``data`` (on the test grid), written to storage."""
    raw = gzip.compress(nib.Nifti1Image(data, AFFINE).to_bytes(), mtime=0)
    series = Series(
        session=session, kind=kind, original_filename=f"{kind}.nii.gz", size_bytes=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(), shape=list(data.shape), voxel_size_mm=[0.5, 0.5, 1.0],
        affine=AFFINE.tolist(), dtype=str(data.dtype), provenance={"source": "test"}, **fields,
    )
    series.file.save(f"{kind}.nii.gz", ContentFile(raw), save=False)
    series.save()
    return series


def decode(response) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_stream(io.BytesIO(as_bytes(response)))


def test_it_gives_a_rater_the_display_of_a_series_they_may_see(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("rater").get(url(mag))

    assert response.status_code == 200
    image = decode(response)
    assert image.shape == SHAPE and image.get_data_dtype() == np.uint8
    assert np.allclose(image.affine, AFFINE, atol=1e-6)
    assert len(image.header.extensions) == 0
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(352 + 16 * 20 * 8)
    assert response["ETag"] == f'"display-v1-{mag.sha256}"'
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Vary"].startswith("Authorization, Cookie")
    assert response["Content-Disposition"] == (
        'attachment; filename="sub-P01_ses-01_t2star_mag_v1_display.nii"'
    )
    # The test magnitude is 100 inside an ellipsoid, 5 outside, plus N(0, 1) noise.
    source = magnitude_data(seed=0)
    slope = float(image.dataobj.slope)
    inside = source <= 255 * slope
    assert np.max(np.abs(image.get_fdata()[inside] - source[inside])) <= slope / 2 + 1e-4


@pytest.mark.parametrize(
    ("role", "target", "status"),
    [
        ("rater", "own:qsm", 404),  # blinded
        ("rater", "own:lesion_mask", 404),  # blinded
        ("rater", "other:t2star_mag", 404),  # another study
        ("outsider", "own:t2star_mag", 404),
        ("other_admin", "own:t2star_mag", 404),
        ("anonymous", "own:t2star_mag", 401),
        ("pi", "own:qsm", 200),
        ("admin", "own:lesion_mask", 200),
        ("superuser", "other:qsm", 200),
    ],
)
def test_it_answers_as_the_series_route_does(world: World, role: str, target: str, status: int):
    side, kind = target.split(":")
    series = world.side(side).series[kind]

    response = world.client(role).get(url(series))

    assert response.status_code == status
    if status == 404:
        assert response.json() == {"detail": "no such series", "code": "not_found"}


def test_it_hides_the_display_of_an_unassigned_session(world: World, rater2):
    from tests.api.world import client_for

    response = client_for(rater2).get(url(world.own.series["t2star_mag"]))

    assert response.status_code == 404


def test_it_shows_a_multi_echo_magnitude_as_the_root_sum_of_squares(world: World):
    echoes = magnitude_data(echoes=3, seed=5)
    mag = stored_series(world.own.session, "t2star_mag", echoes, echo_times_s=[0.004, 0.008, 0.012],
                        label="me")

    response = world.client("rater").get(url(mag))

    image = decode(response)
    assert image.shape == SHAPE  # 3-D, never 4-D
    assert image.header["descrip"].item() == b"qsmreview display v1: RSS of 3 echoes"
    rss = np.sqrt((echoes.astype(np.float64) ** 2).sum(axis=3))
    slope = float(image.dataobj.slope)
    inside = rss <= 255 * slope
    assert inside.mean() > 0.99
    assert np.max(np.abs(image.get_fdata()[inside] - rss[inside])) <= slope / 2 + 1e-3


def test_it_passes_tissue_labels_through(world: World):
    labels = tissue_data()
    tissue = stored_series(world.own.session, "tissue", labels)

    image = decode(world.client("rater").get(url(tissue)))

    assert (float(image.dataobj.slope), float(image.dataobj.inter)) == (1.0, 0.0)
    assert np.asanyarray(image.dataobj).tolist() == labels.tolist()


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [('"display-v1-{sha}"', 304), ('W/"display-v1-{sha}"', 304), ("*", 304),
     ('"{sha}"', 200), ('"display-v0-{sha}"', 200)],
)
def test_it_answers_304_when_the_client_has_the_display(world: World, if_none_match: str, status: int):
    mag = world.own.series["t2star_mag"]

    response = world.client("rater").get(url(mag), HTTP_IF_NONE_MATCH=if_none_match.format(sha=mag.sha256))

    assert response.status_code == status
    assert response["ETag"] == f'"display-v1-{mag.sha256}"'
    assert response["Cache-Control"] == "private, no-cache"


def test_it_refuses_304_to_a_rater_who_may_no_longer_see_the_series(world: World):
    mag = world.own.series["t2star_mag"]
    Series.objects.filter(pk=mag.pk).update(blinded=True)

    response = world.client("rater").get(url(mag), HTTP_IF_NONE_MATCH=f'"display-v1-{mag.sha256}"')

    assert response.status_code == 404


def test_it_answers_head_with_the_get_headers_without_computing(world: World, monkeypatch):
    mag = world.own.series["t2star_mag"]
    client = world.client("rater")

    def no_compute(series):
        raise AssertionError("HEAD computed or read the display volume")

    with monkeypatch.context() as m:
        m.setattr(display_service, "series_display_bytes", no_compute)
        m.setattr("qsmreview.studies.api.views.series_display_bytes", no_compute)
        head = client.head(url(mag))
        head_304 = client.head(url(mag), HTTP_IF_NONE_MATCH=f'"display-v1-{mag.sha256}"')
    get = client.get(url(mag))

    assert head.status_code == 200 and as_bytes(head) == b""
    assert head_304.status_code == 304
    for name in ("Content-Length", "Content-Type", "Content-Disposition", "ETag", "Cache-Control", "Vary"):
        assert head[name] == get[name], name
    assert int(get["Content-Length"]) == len(as_bytes(get))


def test_it_sends_the_volume_gzip_encoded_to_a_client_that_accepts_it(world: World):
    mag = world.own.series["t2star_mag"]
    client = world.client("rater")
    plain = client.get(url(mag))

    encoded = client.get(url(mag), HTTP_ACCEPT_ENCODING="gzip, deflate, br, zstd")

    assert encoded["Content-Encoding"] == "gzip"
    body = as_bytes(encoded)
    assert int(encoded["Content-Length"]) == len(body) < len(as_bytes(plain))
    assert gzip.decompress(body) == as_bytes(plain)
    assert "Content-Encoding" not in plain
    # One entity, two representations: the encoded one's tag is weak (as Django's GZipMiddleware
    # makes it), and either form of the tag revalidates.
    assert encoded["ETag"] == f'W/"display-v1-{mag.sha256}"'
    assert "Accept-Encoding" in encoded["Vary"] and "Accept-Encoding" in plain["Vary"]
    again = client.get(url(mag), HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=encoded["ETag"])
    assert again.status_code == 304 and again["ETag"] == encoded["ETag"]
    head = client.head(url(mag), HTTP_ACCEPT_ENCODING="gzip")
    assert head.status_code == 200 and as_bytes(head) == b""
    assert (head["Content-Encoding"], head["ETag"]) == ("gzip", encoded["ETag"])
    refused = client.get(url(mag), HTTP_ACCEPT_ENCODING="gzip;q=0, identity")
    assert "Content-Encoding" not in refused and as_bytes(refused) == as_bytes(plain)


def test_it_computes_once_and_serves_the_cached_file(world: World, monkeypatch):
    mag = world.own.series["t2star_mag"]
    storage = mag.file.storage
    first = as_bytes(world.client("rater").get(url(mag)))
    name = f"display/{mag.sha256}-v1.nii"
    assert storage.exists(name)
    assert storage.open(name, "rb").read() == first
    assert not [n for n in storage.listdir("display")[1] if n.endswith(".tmp")]

    monkeypatch.setattr(display_service, "_compute", lambda s: pytest.fail("computed again"))
    second = as_bytes(world.client("admin").get(url(mag)))

    assert second == first


def test_it_serves_the_cache_when_the_source_file_is_gone(world: World):
    mag = world.own.series["t2star_mag"]
    first = as_bytes(world.client("rater").get(url(mag)))
    mag.file.storage.delete(mag.file.name)

    response = world.client("rater").get(url(mag))

    assert response.status_code == 200 and as_bytes(response) == first


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_it_recomputes_a_damaged_or_missing_cache(world: World, damage: str):
    mag = world.own.series["t2star_mag"]
    first = as_bytes(world.client("rater").get(url(mag)))
    storage = mag.file.storage
    name = f"display/{mag.sha256}-v1.nii"
    path = storage.path(name)
    if damage == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(1000)
    elif damage == "garbage":
        with open(path, "wb") as fh:
            fh.write(b"x" * len(first))
    else:
        storage.delete(name)

    again = as_bytes(world.client("rater").get(url(mag)))

    assert again == first
    assert storage.open(name, "rb").read() == first


def test_it_says_the_volume_is_gone_when_nothing_can_be_shown(world: World):
    series = make_series(world.own.session, "flair")
    series.file.storage.delete(series.file.name)

    response = world.client("admin").get(url(series))

    assert response.status_code == 410
    assert response.json() == {
        "detail": f"the volume of series {series.pk} is missing from storage or unreadable; "
        "ask the study's admins to restore it (or upload it again)",
        "code": "gone",
    }
