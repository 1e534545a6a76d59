"""Series over the API: metadata, filters, flags, volume download with ETags, and upload."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from qsmreview.jobs.models import Job
from qsmreview.studies.models import Series
from tests.api.world import World, as_bytes, make_series, upload_body, uploaded_file
from tests.fixtures.nifti import SHAPE, NiftiFactory, magnitude_data

# --- metadata and filters --------------------------------------------------------------------


def test_it_returns_the_full_metadata_of_a_series(world: World):
    mag = world.own.series["t2star_mag"]
    job = Job.objects.create(kind="qsm", study=world.own.study, session=world.own.session)
    Series.objects.filter(pk=mag.pk).update(derived_by=job, echo_times_s=[0.004, 0.008])

    body = world.client("rater").get(f"/api/v1/series/{mag.pk}/").json()

    assert body["kind"] == "t2star_mag"
    assert body["shape"] == list(SHAPE)
    assert body["voxel_size_mm"] == [0.5, 0.5, 1.0]
    assert body["affine"][3] == [0.0, 0.0, 0.0, 1.0]
    assert body["dtype"] == "float32"
    assert body["echo_times_s"] == [0.004, 0.008]
    assert (body["b0_t"], body["b0_direction"]) == (7.0, [0.0, 0.0, 1.0])
    assert (body["blinded"], body["version"], body["is_current"]) == (False, 1, True)
    assert body["sha256"] == mag.sha256 and body["size_bytes"] == mag.size_bytes
    assert body["provenance"] == {"source": "test"}
    assert body["uploaded_by"] == "admin"
    assert body["derived_by"] == job.pk
    assert (body["study"], body["subject"], body["session"]) == (
        world.own.study.pk, world.own.subject.pk, world.own.session.pk,
    )
    assert body["volume_url"] == f"http://testserver/api/v1/series/{mag.pk}/volume/"
    assert body["created_at"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=qsm", {"own:qsm", "other:qsm"}),
        ("blinded=false", {"own:t2star_mag", "other:t2star_mag"}),
        ("study={own_study}", {"own:t2star_mag", "own:qsm", "own:lesion_mask"}),
        ("session={other_session}&kind=lesion_mask", {"other:lesion_mask"}),
        ("subject={own_subject}&blinded=true", {"own:qsm", "own:lesion_mask"}),
        ("is_current=false", set()),
    ],
)
def test_it_filters_series(world: World, query: str, expected: set[str]):
    query = query.format(
        own_study=world.own.study.pk,
        other_session=world.other.session.pk,
        own_subject=world.own.subject.pk,
    )

    response = world.client("superuser").get(f"/api/v1/series/?{query}")

    assert response.status_code == 200
    assert {world.label("series", s["id"]) for s in response.json()["results"]} == expected


def test_it_refuses_an_unknown_kind_filter(world: World):
    response = world.client("admin").get("/api/v1/series/?kind=pet")

    assert response.status_code == 400
    message = "Select a valid choice. pet is not one of the available choices."
    assert response.json() == {
        "detail": f"kind: {message}", "code": "invalid", "field": "kind", "errors": {"kind": [message]}
    }


# --- flags -----------------------------------------------------------------------------------


def test_it_makes_an_older_version_current_and_demotes_the_newer(world: World):
    session = world.own.session
    v1 = make_series(session, "flair", version=1, is_current=False)
    v2 = make_series(session, "flair", version=2, is_current=True, seed=5)

    response = world.client("admin").patch(
        f"/api/v1/series/{v1.pk}/", {"is_current": True}, format="json"
    )

    assert response.status_code == 200 and response.json()["is_current"] is True
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.is_current, v2.is_current) == (True, False)
    current = world.client("admin").get("/api/v1/series/?kind=flair&is_current=true").json()
    assert [s["version"] for s in current["results"]] == [1]


def test_it_refuses_to_change_anything_but_the_flags(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("admin").patch(
        f"/api/v1/series/{mag.pk}/", {"label": "x", "blinded": True}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "series are immutable: only blinded and is_current can change (got label); "
        "upload a new version instead",
        "code": "invalid",
        "field": "label",
    }
    mag.refresh_from_db()
    assert (mag.label, mag.blinded) == ("", False)


def test_it_says_why_a_pi_may_not_blind(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("pi").patch(
        f"/api/v1/series/{mag.pk}/", {"blinded": True}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {
        "detail": "only the study's admins can change series",
        "code": "forbidden",
    }


# --- volume ----------------------------------------------------------------------------------


def test_it_streams_the_stored_file_with_cache_headers(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("rater").get(f"/api/v1/series/{mag.pk}/volume/")

    assert response.status_code == 200
    data = as_bytes(response)
    assert data == mag.file.open("rb").read()
    assert hashlib.sha256(data).hexdigest() == mag.sha256
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Length"] == str(mag.size_bytes)
    assert response["Content-Disposition"] == (
        'attachment; filename="sub-P01_ses-01_t2star_mag_v1.nii.gz"'
    )
    assert response["ETag"] == f'"{mag.sha256}"'
    assert response["Cache-Control"] == "private, max-age=300"


def test_it_names_an_uncompressed_volume_nii(world: World):
    series = make_series(world.own.session, "flair", label="echo 1/2")
    series.file.save("flair.nii", series.file.open("rb"), save=True)

    response = world.client("admin").get(f"/api/v1/series/{series.pk}/volume/")

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == (
        'attachment; filename="sub-P01_ses-01_flair_echo-1-2_v1.nii"'
    )


def test_it_says_the_volume_is_missing_from_storage_instead_of_failing(world: World):
    series = make_series(world.own.session, "flair")
    series.file.storage.delete(series.file.name)  # lost by the storage, the row remains

    response = world.client("admin").get(f"/api/v1/series/{series.pk}/volume/")

    assert response.status_code == 410
    assert response.json() == {
        "detail": f"the volume of series {series.pk} is missing from storage; "
        "ask the study's admins to restore it (or upload it again)",
        "code": "gone",
    }


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ('"{sha}"', 304),
        ('W/"{sha}"', 304),
        ('"abc", "{sha}"', 304),
        ("*", 304),
        ('"abc"', 200),
        ("", 200),
    ],
)
def test_it_answers_304_when_the_client_has_the_volume(world: World, if_none_match: str, status: int):
    mag = world.own.series["t2star_mag"]
    headers = {"HTTP_IF_NONE_MATCH": if_none_match.format(sha=mag.sha256)} if if_none_match else {}

    response = world.client("pi").get(f"/api/v1/series/{mag.pk}/volume/", **headers)

    assert response.status_code == status
    assert response["ETag"] == f'"{mag.sha256}"'
    assert response["Cache-Control"] == "private, max-age=300"
    if status == 304:
        assert as_bytes(response) == b""


def test_it_serves_json_errors_to_a_client_asking_for_gzip(world: World):
    qsm = world.own.series["qsm"]

    response = world.client("rater").get(
        f"/api/v1/series/{qsm.pk}/volume/", HTTP_ACCEPT="application/gzip"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "no such series", "code": "not_found"}


# --- upload ----------------------------------------------------------------------------------


def _file(path: Path) -> SimpleUploadedFile:
    return uploaded_file(path.name, path.read_bytes())


def test_it_uploads_a_volume_through_the_api(world: World, nifti: NiftiFactory):
    body = upload_body(world.own.session, echo_times_s="0.004, 0.008", b0_t=7)
    body["file"] = _file(nifti.magnitude("mag.nii.gz", echoes=2))

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["kind"] == "t2star_mag" and created["label"] == "upload"
    assert created["uploaded_by"] == "admin"
    assert created["echo_times_s"] == [0.004, 0.008]
    assert created["b0_t"] == 7.0
    assert created["blinded"] is False
    assert created["shape"] == [*SHAPE, 2]
    assert created["voxel_size_mm"] == [0.5, 0.5, 1.0]
    series = Series.objects.get(pk=created["id"])
    assert series.original_filename == "mag.nii.gz"
    download = world.client("admin").get(created["volume_url"])
    assert hashlib.sha256(as_bytes(download)).hexdigest() == series.sha256 == created["sha256"]


def test_it_blinds_an_uploaded_qsm_by_default(world: World, nifti: NiftiFactory):
    body = upload_body(world.own.session, kind="qsm", label="")
    body["file"] = _file(nifti.volume("chi.nii.gz", magnitude_data() / 1000))

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 201, response.content
    assert response.json()["blinded"] is True
    assert world.client("rater").get(f"/api/v1/series/{response.json()['id']}/").status_code == 404
    assert world.client("rater").get("/api/v1/series/?kind=qsm").json()["results"] == []


def test_it_accepts_echo_times_as_repeated_fields(world: World, nifti: NiftiFactory):
    body = upload_body(world.own.session, echo_times_s=["0.004", "0.008", "0.012"])
    body["file"] = _file(nifti.magnitude("mag.nii.gz", echoes=3))

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 201, response.content
    assert response.json()["echo_times_s"] == [0.004, 0.008, 0.012]


def test_it_refuses_an_upload_without_a_file(world: World):
    body = upload_body(world.own.session)
    del body["file"]

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "file: No file was submitted.",
        "code": "invalid",
        "field": "file",
        "errors": {"file": ["No file was submitted."]},
    }


def test_it_refuses_echo_times_that_are_not_numbers(world: World):
    body = upload_body(world.own.session, echo_times_s="4ms,8ms")

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 400
    message = "echo_times_s must be numbers in seconds, e.g. 0.004,0.008; got '4ms,8ms'"
    assert response.json() == {
        "detail": f"echo_times_s: {message}",
        "code": "invalid",
        "field": "echo_times_s",
        "errors": {"echo_times_s": [message]},
    }


def test_it_refuses_an_upload_to_an_invisible_session(world: World):
    body = upload_body(world.other.session)

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 404
    assert response.json() == {"detail": "no such session", "code": "not_found"}
    assert not Series.objects.filter(label="upload").exists()


@pytest.mark.parametrize(
    ("make", "extra", "message", "field"),
    [
        (
            lambda nifti: nifti.text("notes.nii"),
            {},
            "not a NIfTI file: upload a NIfTI-1 or NIfTI-2 volume (.nii or .nii.gz)",
            "file",
        ),
        (
            lambda nifti: nifti.volume("slice.nii.gz", magnitude_data()[:, :, 0]),
            {},
            f"image is 2-D (shape {SHAPE[:2]}); a series must be a 3-D volume",
            "file",
        ),
        (
            lambda nifti: nifti.magnitude("mag.nii.gz", echoes=2),
            {"echo_times_s": "0.004"},
            "1 echo time(s) given but the image has 2 echo(es) (4th dimension)",
            "echo_times_s",
        ),
    ],
    ids=["not-nifti", "2d", "echo-count"],
)
def test_it_refuses_a_bad_volume_with_the_services_message(
    world: World, nifti: NiftiFactory, make, extra: dict, message: str, field: str
):
    body = upload_body(world.own.session, **extra)
    body["file"] = _file(make(nifti))

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "field": field}
    assert not Series.objects.filter(label="upload").exists()


def test_it_refuses_a_file_over_the_size_limit_with_413(world: World, settings):
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 100
    body = upload_body(world.own.session)

    response = world.client("admin").post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "larger than the upload limit of 100 bytes" in response.json()["detail"]
    assert not Series.objects.filter(label="upload").exists()


@pytest.mark.parametrize(
    ("form", "expected"),
    [({}, None), ({"blinded": "false"}, False), ({"blinded": "true"}, True)],
)
def test_it_leaves_blinding_to_the_kind_when_a_form_omits_it(form: dict, expected):
    """A multipart form without ``blinded`` must not mean "not blinded" (QSM would leak)."""
    from django.http import QueryDict

    from qsmreview.studies.api.serializers import SeriesUploadInputSerializer

    data = QueryDict(mutable=True)
    data.update({"session": "1", "kind": "qsm", **form})
    data["file"] = uploaded_file("q.nii.gz", b"x")

    serializer = SeriesUploadInputSerializer(data=data)

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["blinded"] is expected


def test_it_withdraws_the_current_version_of_a_slot(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("admin").patch(
        f"/api/v1/series/{mag.pk}/", {"is_current": False}, format="json"
    )

    assert response.status_code == 200 and response.json()["is_current"] is False
    current = world.client("admin").get(
        f"/api/v1/series/?session={world.own.session.pk}&is_current=true"
    )
    assert {s["kind"] for s in current.json()["results"]} == {"qsm", "lesion_mask"}


# --- HEAD ------------------------------------------------------------------------------------


def test_it_answers_head_from_the_row_without_opening_the_file(world: World, monkeypatch):
    from django.db.models.fields.files import FieldFile

    mag = world.own.series["t2star_mag"]

    def no_open(self, mode="rb"):
        raise AssertionError("HEAD opened the stored file")

    monkeypatch.setattr(FieldFile, "open", no_open)
    response = world.client("rater").head(f"/api/v1/series/{mag.pk}/volume/")

    assert response.status_code == 200
    assert as_bytes(response) == b""
    assert response["Content-Length"] == str(mag.size_bytes)
    assert response["Content-Type"] == "application/gzip"
    assert response["ETag"] == f'"{mag.sha256}"'
    assert response["Content-Disposition"] == 'attachment; filename="sub-P01_ses-01_t2star_mag_v1.nii.gz"'


def test_it_answers_head_with_the_same_headers_as_get(world: World):
    mag = world.own.series["t2star_mag"]
    client = world.client("admin")

    head = client.head(f"/api/v1/series/{mag.pk}/volume/")
    get = client.get(f"/api/v1/series/{mag.pk}/volume/")

    for name in ("Content-Length", "Content-Type", "Content-Disposition", "ETag", "Cache-Control", "Vary"):
        assert head[name] == get[name], name
    assert int(get["Content-Length"]) == len(as_bytes(get))


def test_it_answers_head_304_to_a_current_etag(world: World):
    mag = world.own.series["t2star_mag"]

    response = world.client("rater").head(
        f"/api/v1/series/{mag.pk}/volume/", HTTP_IF_NONE_MATCH=f'"{mag.sha256}"'
    )

    assert response.status_code == 304
