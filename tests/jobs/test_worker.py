"""Jobs on real ``celery worker`` processes: progress, failure, cancel, a killed worker, two workers.

Runs against whatever broker and database the environment names (filesystem broker + SQLite by
default; Redis + PostgreSQL with CELERY_BROKER_URL and DATABASE_URL).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.services import job_cancel, job_submit, jobs_sweep_stale
from tests.fixtures.worker import CeleryWorkers, Worker, wait_for, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def selftest(study, admin, **params) -> Job:
    return job_submit(kind="selftest", parameters=params, study=study, by=admin)


class ProgressRecorder:
    """Reads a job's (status, progress) every 50 ms in a thread of its own, as a page would."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.seen: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                row = Job.objects.filter(pk=self.job_id).values_list("status", "progress").first()
                if row and (not self.seen or self.seen[-1] != row):
                    self.seen.append(row)
                time.sleep(0.05)
        finally:
            connections.close_all()

    def __enter__(self) -> "ProgressRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        last = Job.objects.filter(pk=self.job_id).values_list("status", "progress").first()
        if last and (not self.seen or self.seen[-1] != last):
            self.seen.append(last)


@pytest.fixture
def workers(celery_worker_pair: tuple[Worker, Worker]) -> tuple[Worker, Worker]:
    return celery_worker_pair


def hostnames(workers: tuple[Worker, Worker]) -> set[str]:
    return {w.hostname for w in workers}


def test_it_runs_a_job_to_success_with_rising_progress(study, admin, workers) -> None:
    job = selftest(study, admin, steps=6, step_seconds=0.3)
    with ProgressRecorder(job.pk) as recorder:
        done = wait_for_job(job, timeout=30)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert (done.progress, done.stage, done.attempts) == (100, "done", 1)
    assert done.worker in hostnames(workers)
    assert done.result["steps"] == 6
    progress = [p for _, p in recorder.seen]
    assert progress == sorted(progress), recorder.seen
    running = {p for s, p in recorder.seen if s == "running"}
    assert any(0 < p < 100 for p in running), f"no intermediate progress seen: {recorder.seen}"
    assert recorder.seen[-1] == ("succeeded", 100)


def test_it_records_a_failing_job(study, admin, workers) -> None:
    job = selftest(study, admin, steps=3, step_seconds=0.05, fail_at_step=2)
    done = wait_for_job(job, timeout=30)
    assert done.status == JobStatus.FAILED
    assert done.error.startswith("RuntimeError: selftest failed at step 2 as asked")
    assert done.finished_at is not None and done.worker in hostnames(workers)


def test_it_cancels_a_running_job(study, admin, workers) -> None:
    job = selftest(study, admin, steps=100, step_seconds=0.1)
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="running", progress__gt=0).exists(), timeout=20, what="the job to run")
    job_cancel(job=Job.objects.get(pk=job.pk), by=admin)
    done = wait_for_job(job, timeout=10)
    assert done.status == JobStatus.CANCELLED
    assert done.stage.startswith("cancelled during: step ")
    assert 0 < done.progress < 100 and done.finished_at is not None


def test_a_silent_stage_stays_alive_through_heartbeats(study, admin, workers, settings) -> None:
    settings.QSMREVIEW_JOB_STALE_SECONDS = 2  # the sweep runs here; the worker beats every second
    job = selftest(study, admin, steps=1, step_seconds=0, silent_seconds=3.5)
    wait_for_job(job, "running", timeout=20)
    swept: list[Job] = []
    while Job.objects.get(pk=job.pk).status == JobStatus.RUNNING:
        swept += jobs_sweep_stale()
        time.sleep(0.25)
    assert swept == []
    done = Job.objects.get(pk=job.pk)
    assert (done.status, done.attempts) == ("succeeded", 1)


def test_a_job_of_a_killed_worker_is_requeued_and_finished_by_another(
    study, admin, celery_workers: CeleryWorkers, workers
) -> None:
    job = selftest(study, admin, steps=8, step_seconds=0.25)
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, status="running", progress__gt=0).exists(),
        timeout=20,
        what="the job to run",
    )
    doomed_host = Job.objects.get(pk=job.pk).worker
    doomed = next(w for w in workers if w.hostname == doomed_host)
    rescuer = next(w for w in workers if w is not doomed)
    celery_workers.kill(doomed)
    killed_at = time.monotonic()
    try:
        swept = wait_for(jobs_sweep_stale, timeout=20, interval=0.25, what="the sweep to find the stale job")
        assert time.monotonic() - killed_at >= 4  # not before its heartbeats are 6 s old
        assert [j.pk for j in swept] == [job.pk]
        assert swept[0].status == JobStatus.QUEUED
        assert swept[0].stage.startswith("re-queued after attempt 1: worker lost: no heartbeat since ")

        done = wait_for_job(job, timeout=30)
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert (done.attempts, done.worker) == (2, rescuer.hostname)
    finally:
        celery_workers.restart(doomed)


def test_two_workers_run_two_jobs_at_once(study, admin, workers) -> None:
    jobs = [selftest(study, admin, steps=6, step_seconds=0.25) for _ in range(2)]
    done = [wait_for_job(j, timeout=30) for j in jobs]
    assert [d.status for d in done] == ["succeeded", "succeeded"], [d.error for d in done]
    assert {d.worker for d in done} == hostnames(workers)
    a, b = done
    assert max(a.started_at, b.started_at) < min(a.finished_at, b.finished_at), "the jobs did not overlap"
