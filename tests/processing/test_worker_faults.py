"""Faults and parallelism of processing jobs on real worker processes started per test.

No module-wide worker here: each test starts exactly the workers it means to.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from qsmreview.jobs.models import Job
from qsmreview.jobs.services import jobs_sweep_stale
from qsmreview.processing.services import processing_submit
from qsmreview.studies.models import Series, Session, Subject
from tests.fixtures.worker import wait_for, wait_for_job
from tests.fixtures.phantom import store

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 240.0


def test_a_killed_worker_leaves_no_partial_output_and_the_job_is_not_left_running(
    celery_workers, admin, phantom_session
):
    victim = celery_workers.start("victim")
    try:
        job = processing_submit(session=phantom_session, kind="qsm", by=admin, parameters={"solver": "toolbox"})
        wait_for(lambda: Job.objects.get(pk=job.pk).status == "running", timeout=60, what="job running")
        wait_for(lambda: Job.objects.get(pk=job.pk).progress >= 5, timeout=60, what="job under way")
        celery_workers.kill(victim)
    finally:
        celery_workers.stop(victim)
    assert not Series.objects.filter(session=phantom_session, kind="qsm").exists()
    time.sleep(settings.QSMREVIEW_JOB_STALE_SECONDS + 1)
    jobs_sweep_stale()
    job.refresh_from_db()
    assert job.status in ("queued", "failed"), job.status
    assert not Series.objects.filter(session=phantom_session, kind="qsm").exists()
    Job.objects.filter(pk=job.pk).update(status="cancelled")  # leave nothing for later workers


def test_two_workers_process_two_sessions_in_parallel(celery_workers, admin, study, phantom, phantom_session):
    other = Session.objects.create(subject=Subject.objects.create(study=study, code="P02"), label="01")
    store(other, "t2star_mag", phantom.magnitude, phantom.affine, echo_times_s=list(phantom.te))
    store(other, "t2star_phase", phantom.phase, phantom.affine, echo_times_s=list(phantom.te))
    workers = [celery_workers.start("par1"), celery_workers.start("par2")]
    try:
        jobs = [
            processing_submit(session=s, kind="qsm", by=admin, parameters={"solver": "toolbox"})
            for s in (phantom_session, other)
        ]
        done = [wait_for_job(j, timeout=JOB_TIMEOUT) for j in jobs]
    finally:
        for w in workers:
            celery_workers.stop(w)
    assert [j.status for j in done] == ["succeeded", "succeeded"], [j.error for j in done]
    assert done[0].worker != done[1].worker
    a, b = done
    assert a.started_at < b.finished_at and b.started_at < a.finished_at, "the two jobs did not overlap"


def test_a_cancelled_qsm_job_stores_nothing_and_its_retry_succeeds(celery_workers, admin, phantom_session):
    from qsmreview.jobs.services import job_cancel, job_retry

    worker = celery_workers.start("canceller")
    try:
        job = processing_submit(session=phantom_session, kind="qsm", by=admin, parameters={"solver": "toolbox"})
        wait_for(lambda: Job.objects.get(pk=job.pk).progress >= 5, timeout=60, what="job under way")
        job_cancel(job=Job.objects.get(pk=job.pk), by=admin)
        job = wait_for_job(job, timeout=JOB_TIMEOUT)
        assert job.status == "cancelled"
        assert not Series.objects.filter(session=phantom_session, kind="qsm").exists()

        retry = job_retry(job=job, by=admin)
        assert retry.retry_of == job and retry.parameters == job.parameters
        retry = wait_for_job(retry, timeout=JOB_TIMEOUT)
        assert retry.status == "succeeded", retry.error
        (qsm,) = Series.objects.filter(session=phantom_session, kind="qsm")
        assert qsm.derived_by == retry and qsm.provenance["parameters"]["solver"] == "toolbox"
    finally:
        celery_workers.stop(worker)
