"""The admin: Series "add" is the web upload; staff see only the studies they administer.

Also the upload size limit (LimitedTemporaryFileUploadHandler) through the admin and the API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from qsmreview.studies.models import Membership, Series, Study
from tests.fixtures.cast import PASSWORD, make_user
from tests.fixtures.nifti import files_under

pytestmark = pytest.mark.django_db

ADD_URL = "admin:studies_series_add"


@pytest.fixture
def upload_tmp(settings, tmp_path: Path) -> Path:
    """Where uploads are streamed to, so a test can see that none is left behind."""
    directory = tmp_path / "uploads"
    directory.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(directory)
    return directory


def client_for(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def post_upload(client: Client, session, path: Path, **fields) -> object:
    with open(path, "rb") as fh:
        body = {
            "session": session.pk,
            "kind": "t2star_mag",
            "label": "",
            "space": "",
            "echo_times_s": "",
            "b0_t": "",
            "blinded": "",
            "file": fh,
            **fields,
        }
        return client.post(reverse(ADD_URL), body)


def test_it_shows_the_upload_form(superuser, session):
    response = client_for(superuser).get(reverse(ADD_URL))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'enctype="multipart/form-data"' in content
    for name in ("session", "kind", "label", "echo_times_s", "b0_t", "blinded", "file"):
        assert f'name="{name}"' in content


def test_it_stores_a_good_upload(superuser, session, nifti, media_root, upload_tmp):
    response = post_upload(
        client_for(superuser), session, nifti.phase(echoes=2), kind="t2star_phase",
        echo_times_s="0.004, 0.008", b0_t="6.98",
    )
    series = Series.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:studies_series_change", args=[series.pk])
    assert (series.kind, series.echo_times_s, series.b0_t) == ("t2star_phase", [0.004, 0.008], 6.98)
    assert series.uploaded_by == superuser
    assert series.provenance["original_filename"] == "phase.nii.gz"
    assert files_under(media_root) == [Path(series.file.path)]
    assert files_under(upload_tmp) == []


def test_it_shows_the_validation_message_and_stores_nothing(superuser, session, nifti, media_root):
    response = post_upload(client_for(superuser), session, nifti.text("scan.nii"))
    assert response.status_code == 200
    assert "not a NIfTI file" in response.content.decode()
    assert not Series.objects.exists()
    assert files_under(media_root) == []


def test_it_puts_an_echo_time_error_on_its_field(superuser, session, nifti, media_root):
    response = post_upload(client_for(superuser), session, nifti.phase(), kind="t2star_phase")
    form = response.context["adminform"].form
    assert "needs its echo time" in form.errors["echo_times_s"][0]
    assert not Series.objects.exists()


def test_it_rejects_unparseable_echo_times(superuser, session, nifti, media_root):
    response = post_upload(client_for(superuser), session, nifti.phase(), kind="t2star_phase", echo_times_s="4 ms")
    assert "echo times must be numbers in seconds" in response.content.decode()
    assert not Series.objects.exists()


def test_it_shows_a_stored_series_read_only(superuser, session, nifti, media_root):
    post_upload(client_for(superuser), session, nifti.magnitude())
    series = Series.objects.get()
    client = client_for(superuser)
    page = client.get(reverse("admin:studies_series_change", args=[series.pk]))
    assert page.status_code == 200
    assert 'name="kind"' not in page.content.decode()  # no editable inputs
    assert series.sha256 in page.content.decode()
    client.post(reverse("admin:studies_series_change", args=[series.pk]), {"label": "changed"})
    series.refresh_from_db()
    assert series.label == ""


def test_it_makes_an_earlier_version_current_by_action(superuser, session, nifti, media_root):
    client = client_for(superuser)
    post_upload(client, session, nifti.magnitude())
    post_upload(client, session, nifti.magnitude("m2.nii.gz", seed=3))
    first, second = Series.objects.order_by("version")
    client.post(
        reverse("admin:studies_series_changelist"),
        {"action": "make_current", "_selected_action": [first.pk]},
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_current and not second.is_current


# --- who sees what ---------------------------------------------------------------------------


@pytest.fixture
def staff_admin(study, other_study):
    """Staff who administer ``study`` only."""
    user = make_user("staffadmin", is_staff=True)
    Membership.objects.create(study=study, user=user, role="admin")
    return user


def test_it_limits_staff_to_the_studies_they_administer(staff_admin, session, other_session, nifti, media_root):
    client = client_for(staff_admin)
    listing = client.get(reverse("admin:studies_session_changelist"))
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert client.get(reverse("admin:studies_session_change", args=[other_session.pk])).status_code == 302
    form = client.get(reverse(ADD_URL)).context["adminform"].form
    assert list(form.fields["session"].queryset) == [session]
    response = post_upload(client, other_session, nifti.magnitude())
    assert "Select a valid choice" in response.content.decode()
    assert not Series.objects.exists()
    assert post_upload(client, session, nifti.magnitude()).status_code == 302


def test_it_refuses_the_admin_to_staff_of_no_study_and_to_raters(rater, db):
    staff = make_user("lonely", is_staff=True)
    assert client_for(staff).get(reverse("admin:studies_series_changelist")).status_code == 403
    assert client_for(rater).get(reverse(ADD_URL)).status_code == 302  # to the admin login


def test_it_lets_staff_create_a_study_they_then_administer(db):
    staff = make_user("creator", is_staff=True)
    response = client_for(staff).post(
        reverse("admin:studies_study_add"),
        {
            "name": "New study",
            "description": "",
            "field_strength_t": "7",
            "protocol": "{}",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(name="New study")
    assert Membership.objects.get(study=study).user == staff


def test_it_rejects_an_invalid_protocol(superuser):
    response = client_for(superuser).post(
        reverse("admin:studies_study_add"),
        {
            "name": "Bad protocol",
            "field_strength_t": "7",
            "protocol": '{"qsm": {"lam": -5}}',
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "lam" in response.context["adminform"].form.errors["protocol"][0]
    assert not Study.objects.filter(name="Bad protocol").exists()


# --- the upload size limit -------------------------------------------------------------------


def test_it_refuses_a_file_over_the_limit_in_the_admin(settings, superuser, session, nifti, media_root, upload_tmp):
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 1000
    path = nifti.magnitude()
    assert path.stat().st_size > 1000
    response = post_upload(client_for(superuser), session, path)
    assert response.status_code == 413
    assert "larger than the upload limit of 1000 bytes" in response.content.decode()
    assert not Series.objects.exists()
    assert files_under(media_root) == []
    assert files_under(upload_tmp) == []


def test_it_answers_413_with_the_message_behind_csrf_middleware(settings, superuser, session, nifti, media_root, upload_tmp):
    """In production the CSRF middleware parses the body first; the middleware makes it a 413."""
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 1000
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("django.middleware.csrf.CsrfViewMiddleware"),
        "qsmreview.studies.uploads.UploadTooLargeMiddleware",
    )
    settings.MIDDLEWARE = middleware
    client = Client(enforce_csrf_checks=True)
    client.login(username="root", password=PASSWORD)
    client.get(reverse(ADD_URL))
    with open(nifti.magnitude(), "rb") as fh:
        response = client.post(
            reverse(ADD_URL),
            {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, "session": session.pk, "kind": "t2star_mag", "file": fh},
        )
    assert response.status_code == 413
    assert "larger than the upload limit" in response.content.decode()
    assert files_under(upload_tmp) == []


def test_it_answers_413_json_in_the_api(settings, admin, session, nifti, media_root, upload_tmp):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 1000
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    with open(nifti.magnitude(), "rb") as fh:
        response = client.post(
            "/api/v1/series/", {"session": session.pk, "kind": "t2star_mag", "file": fh}, format="multipart"
        )
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "too_large"
    assert "larger than the upload limit of 1000 bytes" in response.json()["detail"]
    assert not Series.objects.exists()
    assert files_under(upload_tmp) == []


def test_it_accepts_a_file_just_under_the_limit(settings, superuser, session, nifti, media_root):
    path = nifti.magnitude()
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = path.stat().st_size
    assert post_upload(client_for(superuser), session, path).status_code == 302
    assert Series.objects.count() == 1
