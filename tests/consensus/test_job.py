"""The consensus job on a real Celery worker process (the test database, a real broker): queued by
the last rater's submission, run by the worker, progress reported, results stored."""

from __future__ import annotations

import pytest

from qsmreview.consensus.models import ConsensusRun
from qsmreview.jobs.models import Job
from tests.fixtures.worker import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 120.0


def test_the_last_submission_runs_the_consensus_on_the_worker(celery_worker, rated):
    job = Job.objects.get(kind="consensus", session=rated.session)

    job = wait_for_job(job, timeout=JOB_TIMEOUT)

    assert job.status == "succeeded", job.error
    assert (job.progress, job.stage) == (100, "done")
    run = ConsensusRun.objects.get(session=rated.session)
    assert run.current and run.job_id == job.pk and run.trigger == "every assigned rater submitted"
    assert job.result == {"consensus_run": run.pk, "lesions": 2, "candidates": 3}
    rows = {r.lesion: r for r in run.measurement_sets.get(current=True).rows.all()}
    assert rows[1].relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)


def test_a_job_whose_inputs_went_missing_fails_with_the_message(celery_worker, rated):
    from django.db import transaction

    from qsmreview.consensus.services import consensus_request
    from qsmreview.studies.models import Series

    wait_for_job(Job.objects.get(kind="consensus", session=rated.session), timeout=JOB_TIMEOUT)
    with transaction.atomic():  # the job is sent when this commits, with the tissue labels gone
        job = consensus_request(by=rated.admin, session=rated.session)
        Series.objects.filter(session=rated.session, kind="tissue").update(is_current=False)

    job = wait_for_job(job, timeout=JOB_TIMEOUT)

    assert job.status == "failed"
    assert "no tissue labels (CSF/GM/WM); run tissue classification first" in job.error
    assert ConsensusRun.objects.filter(session=rated.session).count() == 1  # the first job's only
