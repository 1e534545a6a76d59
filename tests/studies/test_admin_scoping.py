"""Django admin for staff who administer one study: nothing of another study shows anywhere
(rows, list filters, choice lists), and every write goes through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from qsmreview.jobs.models import Job
from qsmreview.studies.models import Membership, Subject
from tests.api.world import make_series
from tests.fixtures.cast import make_user
from tests.fixtures.cast import page_client as client_for

pytestmark = pytest.mark.django_db

SECRET = "Secret neighbour study"
CHANGELISTS = [
    "admin:studies_study_changelist",
    "admin:studies_membership_changelist",
    "admin:studies_subject_changelist",
    "admin:studies_session_changelist",
    "admin:studies_series_changelist",
    "admin:jobs_job_changelist",
]


@pytest.fixture
def staff_admin(study):
    user = make_user("staffadmin", is_staff=True)
    Membership.objects.create(study=study, user=user, role="admin")
    return user


@pytest.fixture
def neighbour(other_study, other_session, other_admin, media_root):
    other_study.name = SECRET
    other_study.save(update_fields=["name"])
    other_session.subject.code = "NEIGHBOUR-01"
    other_session.subject.save(update_fields=["code"])
    make_series(other_session, "t2star_mag")
    Job.objects.create(kind="selftest", study=other_study, session=other_session)
    return other_study



@pytest.mark.parametrize("url", CHANGELISTS)
def test_no_page_shows_another_studys_name_or_subjects(url, staff_admin, session, neighbour, media_root) -> None:
    make_series(session, "t2star_mag")
    Job.objects.create(kind="selftest", study=session.subject.study, session=session)

    page = client_for(staff_admin).get(reverse(url))

    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html and "NEIGHBOUR-01" not in html and "other_admin" not in html
    assert "MS 7T QSM" in html  # the own study is there (in its rows or its filter)


@pytest.mark.parametrize("url", ["admin:studies_subject_add", "admin:studies_session_add", "admin:studies_membership_add"])
def test_no_add_form_offers_another_study(url, staff_admin, session, neighbour) -> None:
    html = client_for(staff_admin).get(reverse(url)).content.decode()
    assert SECRET not in html and "NEIGHBOUR-01" not in html


def test_a_subject_added_in_the_admin_goes_through_the_service(staff_admin, study, subject) -> None:
    client = client_for(staff_admin)
    url = reverse("admin:studies_subject_add")

    duplicate = client.post(url, {"study": study.pk, "code": "P01", "sex": "", "phenotype": ""})
    created = client.post(url, {"study": study.pk, "code": "P02", "sex": "F", "phenotype": "RRMS", "age_years": "40"})

    assert duplicate.status_code == 200
    assert "already has a subject" in duplicate.content.decode() or "already exists" in duplicate.content.decode()
    assert created.status_code == 302, created.content.decode()[:1500]
    assert sorted(Subject.objects.filter(study=study).values_list("code", flat=True)) == ["P01", "P02"]


def test_staff_cannot_delete_subjects_sessions_or_jobs(staff_admin, session) -> None:
    job = Job.objects.create(kind="selftest", study=session.subject.study, session=session)
    client = client_for(staff_admin)
    assert client.get(reverse("admin:studies_subject_delete", args=[session.subject.pk])).status_code == 403
    assert client.get(reverse("admin:studies_session_delete", args=[session.pk])).status_code == 403
    assert client.get(reverse("admin:jobs_job_delete", args=[job.pk])).status_code == 403


def test_a_superuser_creating_a_study_becomes_its_admin(superuser) -> None:
    response = client_for(superuser).post(
        reverse("admin:studies_study_add"),
        {"name": "Made in admin", "description": "", "field_strength_t": "7", "protocol": "{}",
         "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    study = Membership.objects.get(user=superuser).study
    assert study.name == "Made in admin" and study.created_by == superuser
