"""Server-rendered pages for each role: home, study, jobs, login."""

from __future__ import annotations

import pytest
from django.test import Client

from qsmreview.access import system
from qsmreview.annotations.models import Assignment
from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.services import job_submit
from qsmreview.studies.models import Series
from tests.fixtures.cast import page_client as client_for

SYSTEM = system("tests")

IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]



def make_series(session, kind: str, *, blinded: bool, version: int = 1, current: bool = True, label: str = "") -> Series:
    return Series.objects.create(
        session=session, kind=kind, label=label, file=f"x/{kind}-{version}.nii.gz", original_filename=f"{kind}.nii.gz",
        size_bytes=1, sha256="0" * 64, shape=[4, 4, 2], voxel_size_mm=[1, 1, 1], affine=IDENTITY,
        dtype="float32", blinded=blinded, version=version, is_current=current,
    )


@pytest.fixture
def scans(session) -> dict[str, Series]:
    return {
        "magnitude": make_series(session, "t2star_mag", blinded=False),
        "qsm_old": make_series(session, "qsm", blinded=True, version=1, current=False),
        "qsm": make_series(session, "qsm", blinded=True, version=2),
    }


# --- login and home -----------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_the_login_page(db) -> None:
    for url in ("/", "/jobs/", "/studies/1/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_logs_a_user_in(admin) -> None:
    client = Client()
    assert b"Log in" in client.get("/accounts/login/").content
    response = client.post("/accounts/login/", {"username": "admin", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    bad = Client().post("/accounts/login/", {"username": "admin", "password": "nope"})
    assert b"didn&#x27;t match" in bad.content or b"didn't match" in bad.content


@pytest.mark.parametrize("who, role", [("admin", "admin"), ("rater", "rater"), ("pi", "pi")])
def test_home_lists_the_users_studies_with_counts(who, role, request, session, other_study) -> None:
    user = request.getfixturevalue(who)
    if who == "rater":  # a rater counts only the sessions assigned to them
        Assignment.objects.create(session=session, rater=user)
    html = client_for(user).get("/").content.decode()
    assert "MS 7T QSM" in html and f"<td>{role}</td>" in html
    assert "<td>1</td>" in html  # one subject, one session
    assert "Other study" not in html


def test_home_tells_a_user_without_studies_what_to_do(outsider, study) -> None:
    html = client_for(outsider).get("/").content.decode()
    assert "You are not a member of any study yet" in html
    assert "MS 7T QSM" not in html


def test_the_nav_shows_admin_to_staff_only(admin, superuser) -> None:
    assert b'href="/admin/"' not in client_for(admin).get("/").content
    assert b'href="/admin/"' in client_for(superuser).get("/").content
    html = client_for(admin).get("/").content.decode()
    for link in ('href="/"', 'href="/jobs/"', 'href="/api/docs/"', 'action="/accounts/logout/"'):
        assert link in html


# --- the study page -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "pi"])
def test_the_study_page_shows_every_series_to_admins_and_pis(who, request, scans) -> None:
    html = client_for(request.getfixturevalue(who)).get(f"/studies/{scans['qsm'].session.subject.study_id}/").content.decode()
    assert "P01" in html and "Session 01" in html
    assert 'data-kind="t2star_mag"' in html
    assert html.count('data-kind="qsm"') == 2
    assert "v2</td><td>current" in html and "superseded" in html


def test_a_raters_study_page_never_lists_qsm(rater, assignment, scans) -> None:
    response = client_for(rater).get(f"/studies/{scans['qsm'].session.subject.study_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-kind="t2star_mag"' in html
    assert 'data-kind="qsm"' not in html and ">QSM<" not in html
    assert "Jobs of this study" not in html


@pytest.mark.parametrize("who", ["outsider", "other_admin"])
def test_a_stranger_gets_404_for_the_study_page(who, request, study) -> None:
    assert client_for(request.getfixturevalue(who)).get(f"/studies/{study.pk}/").status_code == 404


# --- the jobs page ------------------------------------------------------------------------------


@pytest.fixture
def jobs(study, admin, other_study) -> dict[str, Job]:
    queued = job_submit(kind="selftest", parameters={"steps": 2}, study=study, by=admin)
    failed = job_submit(kind="selftest", parameters={"steps": 2}, study=study, by=admin)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, error="RuntimeError: boom", progress=40)
    hidden = job_submit(by=SYSTEM, kind="selftest", study=other_study)
    return {"queued": queued, "failed": failed, "hidden": hidden}


def test_the_jobs_page_shows_an_admin_their_jobs_with_actions(admin, jobs) -> None:
    html = client_for(admin).get("/jobs/").content.decode()
    assert f'data-job="{jobs["queued"].pk}"' in html and f'data-job="{jobs["failed"].pk}"' in html
    assert f'data-job="{jobs["hidden"].pk}"' not in html
    assert 'data-action="cancel"' in html and 'data-action="retry"' in html
    assert '<progress max="100" value="40">' in html and "RuntimeError: boom" in html
    assert 'data-testid="selftest-form"' in html
    assert "qsmreview/jobs.js" in html and 'data-api="/api/v1/jobs/"' in html


def test_the_jobs_page_filters_by_status(admin, jobs) -> None:
    html = client_for(admin).get("/jobs/?status=failed").content.decode()
    assert f'data-job="{jobs["failed"].pk}"' in html and f'data-job="{jobs["queued"].pk}"' not in html
    assert 'data-status="failed"' in html


def test_a_pi_sees_jobs_without_actions(pi, jobs) -> None:
    html = client_for(pi).get("/jobs/").content.decode()
    assert f'data-job="{jobs["queued"].pk}"' in html
    assert "data-action=" not in html and "selftest-form" not in html


def test_a_rater_sees_no_jobs(rater, jobs) -> None:
    html = client_for(rater).get("/jobs/").content.decode()
    assert "data-job=" not in html and "No jobs you can see" in html


def test_an_admin_runs_a_selftest_from_the_jobs_page(admin, study) -> None:
    response = client_for(admin).post("/jobs/selftest/", {"study": study.pk, "steps": "3"}, follow=True)
    job = Job.objects.get()
    assert (job.kind, job.parameters["steps"], job.created_by) == ("selftest", 3, admin)
    assert f"Queued self-test job #{job.pk}." in response.content.decode()


def test_a_pi_cannot_run_a_selftest(pi, study) -> None:
    response = client_for(pi).post("/jobs/selftest/", {"study": study.pk}, follow=True)
    assert "only the study&#x27;s admins can submit jobs" in response.content.decode()
    assert not Job.objects.exists()


def test_a_stranger_cannot_run_a_selftest(outsider, study) -> None:
    assert client_for(outsider).post("/jobs/selftest/", {"study": study.pk}).status_code == 404
