"""The statistics job on a real Celery worker process (the test database, a real broker): asked by
a PI, or queued when a QC decision stores new measurements; progress reported, snapshot stored."""

from __future__ import annotations

import pytest

from qsmreview.jobs.models import Job
from qsmreview.reports.filters import DEFAULT, Filters
from qsmreview.reports.models import StatisticsSnapshot
from tests.fixtures.worker import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 120.0


def _wm(snapshot):
    return next(g for g in snapshot.result["groups"] if g["name"] == "wm_lesions")


def test_a_pi_s_request_runs_on_the_worker_and_stores_a_snapshot(celery_worker, media_root, session, pi):
    from qsmreview.reports.services import statistics_request
    from tests.consensus.factories import make_consensus_run

    make_consensus_run(session)
    job = statistics_request(by=pi, study=session.subject.study, filters=Filters(excluded="include"))

    job = wait_for_job(job, timeout=JOB_TIMEOUT)

    assert job.status == "succeeded", job.error
    assert (job.progress, job.stage) == (100, "done")
    snapshot = StatisticsSnapshot.objects.get(job=job)
    assert job.result == {"statistics_snapshot": snapshot.pk, "rows": 3}
    assert snapshot.requested_by == pi and snapshot.filters == {"source": "all", "excluded": "include"}
    assert _wm(snapshot)["mean_ppm"] == pytest.approx(0.07)


def test_a_qc_exclusion_recomputes_the_statistics_on_the_worker(celery_worker, media_root, session, admin):
    from qsmreview.consensus.services import consensus_exclude
    from qsmreview.reports.services import statistics_compute
    from tests.consensus.factories import make_consensus_run

    study = session.subject.study
    run = make_consensus_run(session)
    before = statistics_compute(by=admin, study=study)
    assert _wm(before)["n"] == 1

    consensus_exclude(by=admin, run=run, lesion=1, reason_code="vessel", reason="a vein")  # commits

    job = wait_for_job(Job.objects.get(kind="statistics", study=study), timeout=JOB_TIMEOUT)
    assert job.status == "succeeded", job.error
    after = StatisticsSnapshot.objects.get(job=job)
    assert after.filters_key == DEFAULT.key and after.pk != before.pk
    assert _wm(after)["n"] == 0  # the excluded WM lesion is out
