"""Permission before body: a refused upload is refused before its file reaches the disk.

The bytes a refused 50 MB upload writes to ``FILE_UPLOAD_TEMP_DIR`` are counted where they are
written (the temporary-file upload handler); they must be zero, for a token client and for a
browser whose CSRF check parses the body inside authentication.
"""

from __future__ import annotations

import pytest

from qsmreview.studies.models import Series
from tests.api.world import World, client_for, nifti_bytes, uploaded_file
from tests.fixtures.uploads import csrf_browser

BIG = 50 * 1024 * 1024
def big_upload(session_id: int | None) -> dict:
    body = {"kind": "t2star_mag", "file": uploaded_file("big.nii", b"\0" * BIG)}
    if session_id is not None:
        body["session"] = session_id
    return body


@pytest.mark.parametrize("role", ["rater", "pi", "outsider", "staff"])
@pytest.mark.parametrize("how", ["token", "browser"])
def test_it_refuses_a_non_admin_s_upload_before_reading_the_file(world: World, written, role, how):
    user = world.users[role]
    client = client_for(user) if how == "token" else csrf_browser(user)

    response = client.post("/api/v1/series/", big_upload(world.own.session.pk))

    assert response.status_code == 403, response.content[:300]
    assert response.json() == {"detail": "only the study's admins can upload series", "code": "forbidden"}
    assert sum(written) == 0


@pytest.mark.parametrize("how", ["token", "browser"])
def test_it_refuses_an_upload_to_another_study_named_in_the_url_before_reading_it(world: World, written, how):
    user = world.users["other_admin"]
    client = client_for(user) if how == "token" else csrf_browser(user)

    response = client.post(f"/api/v1/series/?session={world.own.session.pk}", big_upload(None))

    assert response.status_code == 404
    assert response.json() == {"detail": "no such session", "code": "not_found"}
    assert sum(written) == 0


def test_it_refuses_a_rater_s_upload_named_in_the_url_before_reading_it(world: World, written):
    response = client_for(world.users["rater"]).post(
        f"/api/v1/series/?session={world.own.session.pk}", big_upload(None)
    )

    assert response.status_code == 403
    assert sum(written) == 0


def test_it_refuses_a_bad_session_in_the_url_before_reading_the_body(world: World, written):
    response = client_for(world.users["admin"]).post("/api/v1/series/?session=1.5", big_upload(None))

    assert response.status_code == 400
    assert response.json()["field"] == "session"
    assert sum(written) == 0


@pytest.mark.parametrize("where", ["url", "form", "both"])
@pytest.mark.parametrize("how", ["token", "browser"])
def test_it_stores_an_admin_s_upload_wherever_the_session_is_named(world: World, how, where):
    admin, session = world.users["admin"], world.own.session
    client = client_for(admin) if how == "token" else csrf_browser(admin)
    body = {"kind": "t2star_mag", "label": "url", "file": uploaded_file("m.nii.gz", nifti_bytes(seed=3))}
    if where != "url":
        body = {"session": session.pk, **body}
    query = f"?session={session.pk}" if where != "form" else ""

    response = client.post(f"/api/v1/series/{query}", body)

    assert response.status_code == 201, response.content[:300]
    assert Series.objects.get(pk=response.json()["id"]).session_id == world.own.session.pk


def test_it_refuses_a_form_session_that_differs_from_the_url(world: World):
    body = {
        "session": world.other.session.pk,
        "kind": "t2star_mag",
        "file": uploaded_file("m.nii.gz", nifti_bytes(seed=3)),
    }

    before = Series.objects.count()

    response = client_for(world.users["superuser"]).post(
        f"/api/v1/series/?session={world.own.session.pk}", body
    )

    assert response.status_code == 400
    assert response.json()["field"] == "session"
    assert Series.objects.count() == before


def test_it_asks_for_a_session_when_neither_the_url_nor_the_form_names_one(world: World):
    body = {"kind": "t2star_mag", "file": uploaded_file("m.nii.gz", nifti_bytes(seed=3))}

    response = client_for(world.users["admin"]).post("/api/v1/series/", body)

    assert response.status_code == 400
    assert response.json()["field"] == "session"


# --- every other API route takes no file ------------------------------------------------------


@pytest.mark.parametrize("how", ["token", "browser"])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/subjects/"),
        ("post", "/api/v1/jobs/"),
        ("patch", "/api/v1/studies/{study}/"),
        ("post", "/api/v1/auth/token/"),
    ],
)
def test_it_reads_no_file_sent_to_a_route_that_takes_none(world: World, written, method, url, how):
    user = world.users["rater"]
    client = client_for(user) if how == "token" else csrf_browser(user)
    body = {"code": "X", "file": uploaded_file("big.nii", b"\0" * BIG)}
    kwargs = {}
    if method == "patch":  # the test clients encode multipart for POST only
        from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

        body, kwargs = encode_multipart(BOUNDARY, body), {"content_type": MULTIPART_CONTENT}

    response = getattr(client, method)(url.format(study=world.own.study.pk), body, **kwargs)

    assert 400 <= response.status_code < 500, response.content[:300]
    assert sum(written) == 0


def test_it_still_takes_a_token_login_as_multipart_fields(world: World):
    from tests.fixtures.cast import PASSWORD

    response = client_for(None).post("/api/v1/auth/token/", {"username": "rater1", "password": PASSWORD})

    assert response.status_code == 200
    assert response.json()["token"]


# --- pages outside the API ------------------------------------------------------------------------


def test_the_admin_upload_page_reads_no_file_from_someone_who_may_not_upload(world: World, written):
    # A rater (no staff), and staff of no study: the admin refuses them, after Django has parsed
    # the body for the CSRF check; the file part is never read.
    for role in ("rater", "staff"):
        response = csrf_browser(world.users[role]).post("/admin/studies/series/add/", big_upload(world.own.session.pk))
        assert response.status_code in (302, 403), (role, response.status_code)
    assert sum(written) == 0
    assert not Series.objects.filter(original_filename="big.nii").exists()


def test_no_other_page_reads_a_file(world: World, written):
    admin = csrf_browser(world.users["admin"])
    for url in (f"/studies/{world.own.study.pk}/processing/run/", "/jobs/selftest/", "/accounts/login/"):
        admin.post(url, big_upload(None))
    assert sum(written) == 0


def test_the_admin_upload_page_still_takes_an_admins_file(world: World, written, settings):
    admin = world.users["admin"]
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    body = {"session": world.own.session.pk, "kind": "flair", "label": "gate",
            "file": uploaded_file("ok.nii.gz", nifti_bytes(seed=3))}

    response = csrf_browser(admin).post("/admin/studies/series/add/", body)

    assert response.status_code == 302, response.content[:500]
    assert sum(written) > 0
    assert Series.objects.filter(label="gate").exists()
