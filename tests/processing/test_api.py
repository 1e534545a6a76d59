import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


@pytest.mark.parametrize(
    "who, expected",
    [("admin", 200), ("pi", 200), ("rater", 404), ("other_admin", 404), ("outsider", 404), ("superuser", 200)],
)
def test_overview_is_for_the_study_admins_and_pi(request, who, expected, study, phantom_session):
    user = request.getfixturevalue(who)
    response = client_for(user).get(f"/api/v1/studies/{study.pk}/processing/")
    assert response.status_code == expected, response.content
    if expected == 200:
        (row,) = response.json()
        assert row["session"] == phantom_session.pk
        assert set(row["series"]) == {"t2star_mag", "t2star_phase"}


def test_overview_refuses_anonymous(study):
    assert client_for(None).get(f"/api/v1/studies/{study.pk}/processing/").status_code in (401, 403)


@pytest.mark.parametrize(
    "who, expected",
    # a rater not assigned the session does not see it (404); one assigned to it may not run jobs
    [("admin", 201), ("pi", 403), ("rater", 404), ("other_admin", 404), ("outsider", 404)],
)
def test_running_a_session_job_is_for_the_study_admins(request, who, expected, phantom_session):
    user = request.getfixturevalue(who)
    response = client_for(user).post(
        f"/api/v1/sessions/{phantom_session.pk}/processing/", {"kind": "brain_mask"}, format="json"
    )
    assert response.status_code == expected, response.content


def test_the_assigned_rater_may_not_run_a_session_job(rater, phantom_session):
    from qsmreview.annotations.models import Assignment

    Assignment.objects.create(session=phantom_session, rater=rater)
    response = client_for(rater).post(
        f"/api/v1/sessions/{phantom_session.pk}/processing/", {"kind": "brain_mask"}, format="json"
    )
    assert response.status_code == 403, response.content


def test_a_duplicate_submission_gets_409_with_a_message(admin, phantom_session):
    c = client_for(admin)
    url = f"/api/v1/sessions/{phantom_session.pk}/processing/"
    first = c.post(url, {"kind": "qsm"}, format="json")
    assert first.status_code == 201
    second = c.post(url, {"kind": "qsm"}, format="json")
    assert second.status_code == 409
    assert f"#{first.json()['id']}" in second.json()["detail"]


def test_missing_inputs_get_400_with_a_message(admin, session):
    response = client_for(admin).post(f"/api/v1/sessions/{session.pk}/processing/", {"kind": "qsm"}, format="json")
    assert response.status_code == 400
    assert "no T2* magnitude series uploaded" in response.json()["detail"]


def test_study_batch_reports_submitted_and_skipped(admin, study, phantom_session):
    from qsmreview.studies.models import Session, Subject

    Session.objects.create(subject=Subject.objects.create(study=study, code="P02"), label="01")
    response = client_for(admin).post(f"/api/v1/studies/{study.pk}/processing/", {"kind": "qsm"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert [j["kind"] for j in body["submitted"]] == ["qsm"]
    assert body["skipped"][0]["subject"] == "P02"
    assert "no T2* magnitude" in body["skipped"][0]["reason"]
