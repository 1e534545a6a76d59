"""Job services without a worker process: submit, cancel, retry, the in-process run, the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from qsmreview.access import system
from qsmreview.errors import Conflict, Forbidden, ValidationFailed
from qsmreview.jobs import runners
from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.runners import JobLost, Reporter, register_job_kind
from qsmreview.jobs.services import (
    job_cancel,
    job_retry,
    job_run,
    job_submit,
    jobs_sweep_stale,
)
from tests.fixtures.worker import TEST_QUEUE

SYSTEM = system("tests")

QUICK = {"steps": 2, "step_seconds": 0.01}


@pytest.fixture
def temporary_kinds() -> Iterator[None]:
    """Job kinds registered by a test are gone after it."""
    runners.discover_job_kinds()
    before = dict(runners._registry)
    yield
    runners._registry.clear()
    runners._registry.update(before)


def submit(study, admin, **params) -> Job:
    return job_submit(kind="selftest", parameters={**QUICK, **params}, study=study, by=admin)


def running(job: Job, *, attempts: int = 1, heartbeat_age_s: float = 0.0, worker: str = "w1@host") -> Job:
    """Put ``job`` in the state a worker leaves it in mid-run."""
    beat = timezone.now() - timedelta(seconds=heartbeat_age_s)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=attempts, started_at=beat, heartbeat_at=beat, worker=worker
    )
    job.refresh_from_db()
    return job


# --- the registry -------------------------------------------------------------------------------


def test_it_always_registers_the_selftest_kind() -> None:
    kind = runners.get_job_kind("selftest")
    assert kind.submittable is True
    assert kind.title.startswith("Self-test")


def test_it_refuses_to_register_a_kind_twice(temporary_kinds: None) -> None:
    with pytest.raises(ImproperlyConfigured, match="job kind 'selftest' is registered twice"):

        @register_job_kind("selftest", title="impostor")
        def impostor(job, report):  # pragma: no cover - never runs
            return None


# --- submitting ---------------------------------------------------------------------------------


def test_it_refuses_an_unknown_kind(study, admin) -> None:
    with pytest.raises(ValidationFailed, match=r"unknown job kind 'nope'; registered kinds: .*selftest"):
        job_submit(kind="nope", study=study, by=admin)


def test_it_fills_in_and_checks_the_kinds_parameters(study, admin) -> None:
    job = job_submit(kind="selftest", parameters={"steps": 3}, study=study, by=admin)
    assert job.parameters == {"steps": 3, "step_seconds": 0.5, "silent_seconds": 0.0, "fail_at_step": None}
    with pytest.raises(ValidationFailed, match="steps must be between 1 and 1000"):
        job_submit(by=SYSTEM, kind="selftest", parameters={"steps": 0}, study=study)
    with pytest.raises(ValidationFailed, match="unknown selftest parameter\\(s\\): speed"):
        job_submit(by=SYSTEM, kind="selftest", parameters={"speed": 2}, study=study)
    with pytest.raises(ValidationFailed, match="parameters must be a JSON object"):
        job_submit(by=SYSTEM, kind="selftest", parameters=[1, 2], study=study)  # type: ignore[arg-type]


def test_it_takes_the_study_from_the_session(session, admin) -> None:
    job = job_submit(kind="selftest", parameters=QUICK, session=session, by=admin)
    assert job.study_id == session.subject.study_id


def test_it_refuses_a_session_of_another_study(study, other_session) -> None:
    with pytest.raises(ValidationFailed, match="the session belongs to another study"):
        job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, session=other_session)


def test_it_refuses_a_second_identical_active_job(study, admin) -> None:
    first = job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, dedupe_key="selftest:1")
    with pytest.raises(Conflict, match=rf"an identical job \(#{first.pk}\) is already queued"):
        job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, dedupe_key="selftest:1")
    running(first)
    with pytest.raises(Conflict, match=rf"an identical job \(#{first.pk}\) is already running"):
        job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, dedupe_key="selftest:1")
    # the refused submission rolled back its savepoint only: the transaction is still usable
    assert Job.objects.filter(dedupe_key="selftest:1").count() == 1


def test_it_accepts_the_same_dedupe_key_once_the_first_job_ended(study) -> None:
    first = job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, dedupe_key="k")
    Job.objects.filter(pk=first.pk).update(status=JobStatus.FAILED)
    second = job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study, dedupe_key="k")
    assert second.pk != first.pk and second.status == JobStatus.QUEUED
    # an empty key never conflicts
    job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study)
    job_submit(by=SYSTEM, kind="selftest", parameters=QUICK, study=study)


def test_it_publishes_run_job_on_the_broker_when_the_transaction_commits(
    study, admin, django_capture_on_commit_callbacks
) -> None:
    from qsmreview import celery_app

    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(TEST_QUEUE)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            job = submit(study, admin)
        assert len(callbacks) == 1
        message = None
        for _ in range(50):
            message = conn.default_channel.basic_get(TEST_QUEUE, no_ack=True)
            if message is not None:
                break
        assert message is not None, "no message on the test queue"
        assert message.headers["task"] == "qsmreview.jobs.tasks.run_job"
        assert message.headers["id"] == job.celery_task_id
        assert message.decode()[0] == [job.pk]


def test_it_sends_nothing_when_the_submitting_transaction_rolls_back(
    study, admin, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            submit(study, admin)
            raise RuntimeError("the rest of the request failed")
    assert callbacks == []
    assert not Job.objects.exists()


# --- cancelling and retrying --------------------------------------------------------------------


def test_it_cancels_a_queued_job_at_once_and_its_message_is_then_ignored(study, admin) -> None:
    job = job_cancel(job=submit(study, admin), by=admin)
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    assert job.stage == "cancelled before it started"
    assert job_run(job_id=job.pk, worker="w1@host") is None
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.attempts == 0


def test_it_asks_a_running_job_to_stop(study, admin) -> None:
    job = job_cancel(job=running(submit(study, admin)), by=admin)
    assert job.status == JobStatus.RUNNING
    assert job.cancel_requested is True


def test_it_lets_only_the_studys_admins_cancel(study, admin, pi, superuser) -> None:
    job = submit(study, admin)
    with pytest.raises(Forbidden, match="only the study's admins can cancel jobs"):
        job_cancel(job=job, by=pi)
    assert job_cancel(job=job, by=superuser).status == JobStatus.CANCELLED


def test_it_refuses_to_cancel_a_finished_job(study, admin) -> None:
    job = submit(study, admin)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    with pytest.raises(Conflict, match=rf"job #{job.pk} has already succeeded"):
        job_cancel(job=job, by=admin)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    with pytest.raises(Conflict, match=rf"job #{job.pk} has already been cancelled"):
        job_cancel(job=job, by=admin)


def test_it_retries_a_failed_job_as_a_new_job_pointing_back(study, admin, pi) -> None:
    failed = job_submit(by=SYSTEM, kind="selftest", parameters={"steps": 3, "fail_at_step": 2}, study=study, dedupe_key="k")
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, error="boom")
    failed.refresh_from_db()
    with pytest.raises(Forbidden, match="only the study's admins can retry jobs"):
        job_retry(job=failed, by=pi)
    retry = job_retry(job=failed, by=admin)
    assert retry.pk != failed.pk
    assert retry.retry_of_id == failed.pk
    assert retry.status == JobStatus.QUEUED
    assert (retry.kind, retry.parameters, retry.dedupe_key) == (failed.kind, failed.parameters, "k")
    assert retry.created_by == admin


def test_it_refuses_to_retry_an_active_or_succeeded_job(study, admin) -> None:
    job = submit(study, admin)
    with pytest.raises(Conflict, match=rf"only failed or cancelled jobs can be retried; job #{job.pk} is queued"):
        job_retry(job=job, by=admin)


# --- running in this process (a worker's code path) ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_job_to_success_with_its_result(study, admin) -> None:
    job = submit(study, admin, steps=3)
    done = job_run(job_id=job.pk, worker="w1@host")
    assert done is not None
    assert (done.status, done.progress, done.stage, done.attempts) == ("succeeded", 100, "done", 1)
    assert done.worker == "w1@host"
    assert done.result["steps"] == 3
    assert done.started_at <= done.finished_at
    assert done.error == ""


@pytest.mark.django_db(transaction=True)
def test_it_ignores_a_second_delivery_of_the_same_job(study, admin) -> None:
    job = submit(study, admin)
    job_run(job_id=job.pk, worker="w1@host")
    assert job_run(job_id=job.pk, worker="w2@host") is None
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("succeeded", "w1@host", 1)
    assert job_run(job_id=999_999, worker="w1@host") is None


@pytest.mark.django_db(transaction=True)
def test_it_records_a_runners_error_with_a_traceback_tail(study, admin) -> None:
    job = submit(study, admin, steps=3, fail_at_step=2)
    done = job_run(job_id=job.pk, worker="w1@host")
    assert done.status == JobStatus.FAILED
    assert done.error.startswith("RuntimeError: selftest failed at step 2 as asked")
    assert "Traceback" in done.error and "demo_kinds.py" in done.error
    assert done.finished_at is not None
    assert done.stage == "step 2 of 3"


@pytest.mark.django_db(transaction=True)
def test_it_shows_a_domain_error_by_its_message_alone(study, admin, temporary_kinds) -> None:
    @register_job_kind("t_domain_error", title="refuses")
    def refuse(job, report):
        raise ValidationFailed("the phase has no echo times")

    job = job_submit(by=SYSTEM, kind="t_domain_error", study=study)
    assert job_run(job_id=job.pk, worker="w1@host").error == "the phase has no echo times"


@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_running_job_at_its_next_report(study, admin, temporary_kinds) -> None:
    seen: list[str] = []

    @register_job_kind("t_cancel_midway", title="cancelled midway")
    def cancelled_midway(job, report):
        report(0.2, "first half")
        job_cancel(job=job, by=admin)  # as a user would, from another process
        seen.append("asked")
        report(0.5, "second half")
        seen.append("went on")  # never reached

    job = job_submit(by=SYSTEM, kind="t_cancel_midway", study=study)
    done = job_run(job_id=job.pk, worker="w1@host")
    assert seen == ["asked"]
    assert (done.status, done.stage) == ("cancelled", "cancelled during: second half")
    assert done.progress == 50 and done.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_it_fails_a_job_whose_kind_is_no_longer_registered(study, admin) -> None:
    job = submit(study, admin)
    Job.objects.filter(pk=job.pk).update(kind="gone")
    done = job_run(job_id=job.pk, worker="w1@host")
    assert done.status == JobStatus.FAILED
    assert done.error.startswith("unknown job kind 'gone'")


def test_the_reporter_throttles_writes_and_never_lowers_progress(study, admin) -> None:
    job = running(submit(study, admin))
    report = Reporter(job_id=job.pk, attempt=1, min_interval=60)
    report(0.30, "loading")
    report(0.50, "loading")  # same stage within the interval: not written
    job.refresh_from_db()
    assert (job.progress, job.stage) == (30, "loading")
    report(0.10, "inverting")  # a new stage is written at once; progress does not go back
    job.refresh_from_db()
    assert (job.progress, job.stage) == (50, "inverting")
    report(1.0, "almost")  # 100 is for succeeded jobs only
    job.refresh_from_db()
    assert job.progress == 99


def test_the_reporter_stops_a_worker_whose_attempt_was_given_up(study, admin) -> None:
    job = running(submit(study, admin), attempts=1)
    report = Reporter(job_id=job.pk, attempt=1)
    report(0.1, "working")
    Job.objects.filter(pk=job.pk).update(attempts=2)  # swept and claimed by another worker
    with pytest.raises(JobLost, match=f"job {job.pk} attempt 1 is no longer running here"):
        report(0.2, "still working")
    job.refresh_from_db()
    assert job.stage == "working"


# --- the stale sweep ----------------------------------------------------------------------------


def test_it_requeues_a_stale_job_with_a_new_message(study, admin, settings, django_capture_on_commit_callbacks) -> None:
    settings.QSMREVIEW_JOB_STALE_SECONDS = 6
    settings.QSMREVIEW_JOB_MAX_ATTEMPTS = 2
    job = running(submit(study, admin), attempts=1, heartbeat_age_s=7, worker="w1@box")
    old_task = job.celery_task_id
    with django_capture_on_commit_callbacks() as callbacks:
        swept = jobs_sweep_stale()
    assert [j.pk for j in swept] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.stage.startswith("re-queued after attempt 1: worker lost: no heartbeat since ")
    assert job.stage.endswith("UTC from w1@box")
    assert job.celery_task_id != old_task
    assert len(callbacks) == 1  # one new run_job message, sent on commit


def test_it_fails_a_stale_job_after_its_last_attempt(study, admin, settings) -> None:
    settings.QSMREVIEW_JOB_MAX_ATTEMPTS = 2
    job = running(submit(study, admin), attempts=2, heartbeat_age_s=60, worker="w2@box")
    beat = job.heartbeat_at
    jobs_sweep_stale()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == (
        f"worker lost: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC from w2@box (attempt 2 of 2)"
    )
    assert job.finished_at is not None


def test_it_cancels_a_stale_job_whose_cancellation_was_asked(study, admin) -> None:
    job = running(submit(study, admin), heartbeat_age_s=60)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    jobs_sweep_stale()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_it_leaves_live_and_queued_jobs_alone(study, admin, settings) -> None:
    settings.QSMREVIEW_JOB_STALE_SECONDS = 6
    alive = running(submit(study, admin), heartbeat_age_s=2)
    queued = submit(study, admin)
    Job.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert jobs_sweep_stale() == []
    alive.refresh_from_db()
    queued.refresh_from_db()
    assert (alive.status, queued.status) == ("running", "queued")
    # the same job is stale once `now` is far enough ahead
    assert [j.pk for j in jobs_sweep_stale(now=timezone.now() + timedelta(seconds=10))] == [alive.pk]


def test_the_sweep_jobs_command_reports_what_it_swept(study, admin) -> None:
    job = running(submit(study, admin), heartbeat_age_s=600)
    out = StringIO()
    call_command("sweep_jobs", stdout=out)
    assert f"job {job.pk} (selftest): queued" in out.getvalue()
    assert "swept 1 stale job(s)" in out.getvalue()
