"""The jobs API: who sees which jobs, and who may submit, cancel and retry them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from qsmreview.access import system
from qsmreview.jobs import runners
from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.runners import register_job_kind
from qsmreview.jobs.services import job_submit
from qsmreview.studies.models import Series

SYSTEM = system("tests")

QUICK = {"steps": 2, "step_seconds": 0.01}


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def job(study, session, admin) -> Job:
    return job_submit(kind="selftest", parameters=QUICK, study=study, session=session, by=admin)


@pytest.fixture
def other_job(other_study, other_admin) -> Job:
    return job_submit(kind="selftest", parameters=QUICK, study=other_study, by=other_admin)


def finished(job: Job, status: str, **fields) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "pi", "superuser"])
def test_it_lists_the_jobs_of_the_studies_one_administers_or_leads(who, request, job, other_job) -> None:
    user = request.getfixturevalue(who)
    body = client_for(user).get("/api/v1/jobs/").json()
    ids = [row["id"] for row in body["results"]]
    assert job.pk in ids
    assert (other_job.pk in ids) is (who == "superuser")


@pytest.mark.parametrize("who", ["rater", "outsider", "other_admin"])
def test_it_hides_the_jobs_from_raters_and_strangers(who, request, job) -> None:
    user = request.getfixturevalue(who)
    client = client_for(user)
    listed = [row["id"] for row in client.get("/api/v1/jobs/").json()["results"]]
    assert job.pk not in listed
    response = client.get(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "no such job", "code": "not_found"}


def test_it_refuses_anonymous_callers(job) -> None:
    assert client_for(None).get("/api/v1/jobs/").status_code in (401, 403)


def test_it_filters_by_status_kind_study_and_session(job, session, study, superuser, other_job) -> None:
    failed = finished(job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study), JobStatus.FAILED)
    client = client_for(superuser)

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/v1/jobs/?{query}")
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids("status=failed") == {failed.pk}
    assert ids("status=queued&status=failed") == {job.pk, failed.pk, other_job.pk}
    assert ids(f"study={study.pk}") == {job.pk, failed.pk}
    assert ids(f"session={session.pk}") == {job.pk}
    assert ids("kind=qsm") == set()
    assert client.get("/api/v1/jobs/?status=lost").status_code == 400


def test_it_shows_a_jobs_progress_timings_error_and_outputs(job, admin, session) -> None:
    finished(job, JobStatus.FAILED, progress=40, stage="step 2 of 5", error="RuntimeError: boom", worker="w1@h")
    output = Series.objects.create(
        session=session, kind="brain_mask", file="x/brain_mask.nii.gz", size_bytes=1, sha256="0" * 64,
        shape=[2, 2, 2], voxel_size_mm=[1, 1, 1], affine=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        dtype="uint8", derived_by=job,
    )
    body = client_for(admin).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["kind"] == "selftest" and body["kind_title"].startswith("Self-test")
    assert (body["status"], body["progress"], body["stage"]) == ("failed", 40, "step 2 of 5")
    assert body["error"] == "RuntimeError: boom"
    assert body["parameters"]["steps"] == 2
    assert body["outputs"] == [output.pk]
    assert body["target"] == "MS 7T QSM / P01 ses-01"
    assert body["created_by"] == "admin"
    assert body["worker"] == "w1@h"
    assert {"created_at", "started_at", "finished_at", "heartbeat_at", "runtime_seconds", "attempts", "retry_of"} <= set(body)
    assert (body["can_cancel"], body["can_retry"]) == (False, True)


def test_it_tells_a_pi_they_cannot_act_on_jobs(job, pi) -> None:
    body = client_for(pi).get(f"/api/v1/jobs/{job.pk}/").json()
    assert (body["can_cancel"], body["can_retry"]) == (False, False)


def test_it_lists_the_registered_kinds(admin) -> None:
    kinds = {k["name"]: k for k in client_for(admin).get("/api/v1/jobs/kinds/").json()}
    assert kinds["selftest"]["submittable"] is True


# --- cancel and retry ---------------------------------------------------------------------------


def test_an_admin_cancels_a_queued_job(job, admin) -> None:
    response = client_for(admin).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_a_pi_may_not_cancel(job, pi) -> None:
    response = client_for(pi).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    assert response.json()["detail"] == "only the study's admins can cancel jobs"


def test_a_rater_cannot_even_find_the_job_to_cancel(job, rater) -> None:
    assert client_for(rater).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404


def test_cancelling_a_finished_job_is_a_conflict(job, admin) -> None:
    finished(job, JobStatus.SUCCEEDED)
    response = client_for(admin).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json() == {"detail": f"job #{job.pk} has already succeeded", "code": "conflict"}


def test_an_admin_retries_a_failed_job(job, admin, pi) -> None:
    finished(job, JobStatus.FAILED, error="boom")
    assert client_for(pi).post(f"/api/v1/jobs/{job.pk}/retry/").json()["detail"] == (
        "only the study's admins can retry jobs"
    )
    response = client_for(admin).post(f"/api/v1/jobs/{job.pk}/retry/")
    assert response.status_code == 201
    body = response.json()
    assert body["retry_of"] == job.pk and body["status"] == "queued" and body["id"] != job.pk


def test_retrying_a_running_job_is_a_conflict(job, admin) -> None:
    finished(job, JobStatus.RUNNING)
    response = client_for(admin).post(f"/api/v1/jobs/{job.pk}/retry/")
    assert response.status_code == 409
    assert response.json()["detail"] == f"only failed or cancelled jobs can be retried; job #{job.pk} is running"


# --- submitting ---------------------------------------------------------------------------------


def test_an_admin_submits_a_selftest_job(study, session, admin) -> None:
    response = client_for(admin).post(
        "/api/v1/jobs/",
        {"kind": "selftest", "study": study.pk, "session": session.pk, "parameters": {"steps": 3}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["session"], body["parameters"]["steps"]) == ("queued", session.pk, 3)
    assert Job.objects.get(pk=body["id"]).created_by == admin


@pytest.mark.parametrize("who", ["pi", "rater"])
def test_only_admins_submit(who, request, study) -> None:
    response = client_for(request.getfixturevalue(who)).post(
        "/api/v1/jobs/", {"kind": "selftest", "study": study.pk}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "only the study's admins can submit jobs"
    assert not Job.objects.exists()


def test_a_stranger_cannot_find_the_study_to_submit_to(study, outsider) -> None:
    response = client_for(outsider).post("/api/v1/jobs/", {"kind": "selftest", "study": study.pk}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "no such study"


def test_it_refuses_a_session_of_another_study(study, admin, other_session) -> None:
    response = client_for(admin).post(
        "/api/v1/jobs/", {"kind": "selftest", "study": study.pk, "session": other_session.pk}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "no such session in this study"


def test_it_refuses_bad_parameters_and_unknown_kinds(study, admin) -> None:
    client = client_for(admin)
    response = client.post(
        "/api/v1/jobs/", {"kind": "selftest", "study": study.pk, "parameters": {"steps": 5000}}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "steps must be between 1 and 1000", "code": "invalid", "field": "parameters"}
    response = client.post("/api/v1/jobs/", {"kind": "nope", "study": study.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("unknown job kind 'nope'; registered kinds:")


@pytest.fixture
def unsubmittable_kind() -> Iterator[str]:
    runners.discover_job_kinds()
    register_job_kind("t_own_endpoint", title="has its own endpoint")(lambda job, report: None)
    yield "t_own_endpoint"
    runners._registry.pop("t_own_endpoint", None)


def test_it_refuses_kinds_that_have_their_own_endpoint(study, admin, unsubmittable_kind) -> None:
    response = client_for(admin).post("/api/v1/jobs/", {"kind": unsubmittable_kind, "study": study.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "jobs of kind 't_own_endpoint' are submitted through their own endpoint, not here"
    )


def test_a_duplicate_submission_is_a_conflict(study, admin) -> None:
    client = client_for(admin)
    payload = {"kind": "selftest", "study": study.pk, "dedupe_key": "once"}
    first = client.post("/api/v1/jobs/", payload, format="json").json()
    response = client.post("/api/v1/jobs/", payload, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == f"an identical job (#{first['id']}) is already queued"
