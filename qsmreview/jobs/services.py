"""The life of a background job: submit, run (on a worker), cancel, retry, sweep the stale.

Statuses move only forwards, each move a conditional UPDATE so that two processes never both
win::

    queued --claim--> running --> succeeded | failed | cancelled
    queued --cancel--> cancelled
    running --(no heartbeat for QSMREVIEW_JOB_STALE_SECONDS)--> queued (again) | failed

A worker's writes are fenced on ``(status='running', attempts=<its attempt>)``: once the sweep
has given a job up, the old worker's late progress or result is discarded.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from qsmreview.errors import Conflict, DomainError, ValidationFailed
from qsmreview.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from qsmreview.jobs.heartbeat import Heartbeat
from qsmreview.jobs.runners import JobCancelled, JobLost, Reporter, get_job_kind
from qsmreview.studies.models import Session, Study
from qsmreview.access import Actor, require_manage, require_superuser, user_or_none

log = logging.getLogger(__name__)

_ERROR_MAX_CHARS = 4000
_TRACEBACK_LINES = 12


# --- submitting ---------------------------------------------------------------------------------


def job_submit(
    *,
    kind: str,
    parameters: dict[str, Any] | None = None,
    study: Study | None = None,
    session: Session | None = None,
    by: Actor,
    dedupe_key: str = "",
    retry_of: Job | None = None,
) -> Job:
    """Record a queued job and send it to the workers when the transaction commits.

    Only the study's admins (for a job with no study: superusers) may submit; this also checks
    the kind and the parameters, and refuses duplicates.

    Parameters
    ----------
    kind
        A registered job kind (:func:`qsmreview.jobs.runners.register_job_kind`).
    parameters
        JSON-serialisable; cleaned by the kind's ``clean_parameters`` if it has one.
    study, session
        What the job works on; ``study`` defaults to the session's study. Jobs are visible to
        the study's admins and PIs.
    dedupe_key
        Equal for two submissions that would do the same work: a second one is refused while
        the first is queued or running.
    by
        The acting user, recorded as the job's creator (a system actor records none).

    Raises
    ------
    Forbidden
        ``by`` may not run jobs in this study.
    ValidationFailed
        Unknown kind, parameters not a JSON object, or parameters refused by the kind.
    Conflict
        An identical job (same ``dedupe_key``) is queued or running.
    """
    job_kind = get_job_kind(kind)
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValidationFailed("parameters must be a JSON object", field="parameters")
    if job_kind.clean_parameters is not None:
        parameters = job_kind.clean_parameters(parameters)
    if session is not None:
        session_study_id = session.subject.study_id
        if study is None:
            study = session.subject.study
        elif study.pk != session_study_id:
            raise ValidationFailed("the session belongs to another study", field="session")
    _require_job_rights(study.pk if study is not None else None, by, "submit")
    if len(dedupe_key) > 200:
        raise ValidationFailed("dedupe_key is longer than 200 characters", field="dedupe_key")

    task_id = str(uuid.uuid4())
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                parameters=parameters,
                study=study,
                session=session,
                created_by=user_or_none(by),
                dedupe_key=dedupe_key,
                retry_of=retry_of,
                celery_task_id=task_id,
            )
    except IntegrityError:
        twin = pending_job(dedupe_key)
        if twin is None:
            raise
        raise Conflict(f"an identical job (#{twin.pk}) is already {twin.status}") from None
    _send_on_commit(job.pk, task_id)
    return job


def pending_job(dedupe_key: str) -> Job | None:
    """The job queued or running under ``dedupe_key`` (None for an empty key or none)."""
    return Job.objects.filter(dedupe_key=dedupe_key, status__in=ACTIVE_STATUSES).first() if dedupe_key else None


def job_submit_or_pending(*, dedupe_key: str, **submit: Any) -> Job:
    """The job queued or running under ``dedupe_key``, else a new one (:func:`job_submit` with
    ``submit``): a request that repeats one in flight joins it, also when both race to submit."""
    twin = pending_job(dedupe_key)
    if twin is not None:
        return twin
    try:
        with transaction.atomic():
            return job_submit(dedupe_key=dedupe_key, **submit)
    except Conflict:
        twin = pending_job(dedupe_key)
        if twin is None:
            raise
        return twin


def _send_on_commit(job_id: int, task_id: str) -> None:
    transaction.on_commit(lambda: _send(job_id, task_id))


def _send(job_id: int, task_id: str) -> None:
    """Publish ``run_job(job_id)``; a job whose message cannot be sent is failed, not left queued."""
    from qsmreview.jobs.tasks import run_job

    try:
        run_job.apply_async(args=[job_id], task_id=task_id)
    except Exception as exc:
        log.exception("could not send job %s to the broker", job_id)
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, celery_task_id=task_id).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"could not send the job to the workers' broker: {exc}"[:_ERROR_MAX_CHARS],
        )


# --- cancelling and retrying --------------------------------------------------------------------


def _require_job_rights(study_id: int | None, by: Actor, action: str) -> None:
    if study_id is None:
        require_superuser(by, f"{action} jobs that belong to no study")
    else:
        require_manage(by, study_id, f"{action} jobs")


def job_cancel(*, job: Job, by) -> Job:
    """Cancel a job: a queued one at once, a running one at its runner's next progress report.

    A queued job's message stays on the broker and is ignored by the worker that receives it
    (the claim needs status ``queued``), so nothing has to be revoked.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the job's study.
    Conflict
        The job has already finished.
    """
    _require_job_rights(job.study_id, by, "cancel")
    now = timezone.now()
    cancelled_queued = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now, stage="cancelled before it started"
    )
    if not cancelled_queued:
        Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or (
        job.status == JobStatus.CANCELLED and not cancelled_queued
    ):
        raise Conflict(f"job #{job.pk} has already {_finished_verb(job.status)}")
    return job


def _finished_verb(status: str) -> str:
    return {"succeeded": "succeeded", "failed": "failed", "cancelled": "been cancelled"}.get(status, status)


def job_retry(*, job: Job, by) -> Job:
    """Submit a new job with the same kind, parameters and target as a failed or cancelled one.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the job's study.
    Conflict
        The job has not failed nor been cancelled, or an identical job is queued or running.
    """
    _require_job_rights(job.study_id, by, "retry")
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"only failed or cancelled jobs can be retried; job #{job.pk} is {job.status}")
    return job_submit(
        kind=job.kind,
        parameters=job.parameters,
        study=job.study,
        session=job.session,
        by=by,
        dedupe_key=job.dedupe_key,
        retry_of=job,
    )


# --- running (on a worker) ----------------------------------------------------------------------


def job_run(*, job_id: int, worker: str) -> Job | None:
    """Claim job ``job_id`` and run it to an end; called by the ``run_job`` task.

    The claim is one conditional UPDATE (``status='queued'`` -> ``running``): a duplicate or late
    delivery of the message, or a job cancelled in the meantime, does nothing and returns None.
    The job ends succeeded, failed or cancelled, never running, unless the process dies (the
    stale sweep then takes over) or the sweep gave it up first (its writes are then discarded).
    """
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, cancel_requested=False).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        worker=worker[:200],
        progress=0,
        stage="starting",
        error="",
    )
    if not claimed:
        log.info("job %s not claimed by %s: not queued (duplicate or stale delivery)", job_id, worker)
        return None
    job = Job.objects.select_related("study", "session").get(pk=job_id)
    attempt = job.attempts
    mine = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt)
    log.info("job %s (%s) attempt %s started on %s", job_id, job.kind, attempt, worker)

    try:
        kind = get_job_kind(job.kind)
    except DomainError as exc:
        mine.update(status=JobStatus.FAILED, finished_at=timezone.now(), error=exc.message)
        return Job.objects.get(pk=job_id)

    report = Reporter(job_id=job_id, attempt=attempt)
    with Heartbeat(job_id=job_id, attempt=attempt, interval=settings.QSMREVIEW_JOB_HEARTBEAT_SECONDS):
        try:
            result = kind.run(job, report)
        except JobLost:
            log.warning("job %s attempt %s was given up by the stale sweep; stopping", job_id, attempt)
            return None
        except JobCancelled:
            mine.update(
                status=JobStatus.CANCELLED,
                finished_at=timezone.now(),
                stage=f"cancelled during: {report.stage}"[:200] if report.stage else "cancelled",
            )
        except Exception as exc:
            log.exception("job %s attempt %s failed", job_id, attempt)
            mine.update(status=JobStatus.FAILED, finished_at=timezone.now(), error=_error_text(exc))
        else:
            try:
                mine.update(
                    status=JobStatus.SUCCEEDED,
                    finished_at=timezone.now(),
                    progress=100,
                    stage="done",
                    result=result or {},
                )
            except Exception as exc:  # e.g. a result that is not JSON-serialisable
                log.exception("job %s: storing the result failed", job_id)
                mine.update(
                    status=JobStatus.FAILED,
                    finished_at=timezone.now(),
                    error=f"the job ran but its result could not be stored: {_error_text(exc)}"[:_ERROR_MAX_CHARS],
                )
    return Job.objects.get(pk=job_id)


def _error_text(exc: BaseException) -> str:
    """The error as a user sees it: the message, then (for unexpected errors) a traceback tail."""
    if isinstance(exc, DomainError):
        return exc.message[:_ERROR_MAX_CHARS]
    message = f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc)[-_TRACEBACK_LINES:])
    text = f"{message}\n\n{tail}"
    if len(text) > _ERROR_MAX_CHARS:
        text = f"{message[: _ERROR_MAX_CHARS // 2]}\n\n…{tail[-(_ERROR_MAX_CHARS // 2) :]}"
    return text


# --- the stale sweep ----------------------------------------------------------------------------


def jobs_sweep_stale(*, now: datetime | None = None) -> list[Job]:
    """Re-queue or fail running jobs whose worker stopped sending heartbeats.

    A running job with no heartbeat for ``QSMREVIEW_JOB_STALE_SECONDS`` lost its worker (killed,
    machine gone). It is queued again with a new message while it has had fewer than
    ``QSMREVIEW_JOB_MAX_ATTEMPTS`` attempts, else failed with "worker lost: ..."; one whose
    cancellation was requested is cancelled. Queued jobs are left alone, however old: a queue
    may simply be long. Safe to run concurrently (each change is a conditional UPDATE).

    Returns
    -------
    list of Job
        The jobs this call re-queued, failed or cancelled, as they are now.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.QSMREVIEW_JOB_STALE_SECONDS)
    max_attempts = settings.QSMREVIEW_JOB_MAX_ATTEMPTS
    stale_q = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    swept: list[Job] = []
    for job in Job.objects.filter(stale_q, status=JobStatus.RUNNING):
        still_stale = Job.objects.filter(stale_q, pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)
        since = job.heartbeat_at or job.started_at
        lost = f"worker lost: no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC from {job.worker or 'a worker'}"
        if job.cancel_requested:
            changed = still_stale.update(status=JobStatus.CANCELLED, finished_at=now, stage="cancelled", error=lost)
        elif job.attempts < max_attempts:
            task_id = str(uuid.uuid4())
            changed = still_stale.update(
                status=JobStatus.QUEUED,
                stage=f"re-queued after attempt {job.attempts}: {lost}"[:200],
                progress=0,
                heartbeat_at=None,
                celery_task_id=task_id,
            )
            if changed:
                _send_on_commit(job.pk, task_id)
        else:
            changed = still_stale.update(
                status=JobStatus.FAILED,
                finished_at=now,
                error=f"{lost} (attempt {job.attempts} of {max_attempts})",
            )
        if changed:
            log.warning("swept stale job %s: %s", job.pk, lost)
            job.refresh_from_db()
            swept.append(job)
    return swept


_last_opportunistic_sweep = float("-inf")


def jobs_sweep_stale_if_due() -> list[Job]:
    """Sweep at most every few seconds per process; called when jobs are listed.

    Lets an installation without ``celery beat`` (the embedded demo) still recover jobs whose
    worker died, as soon as someone looks at the jobs.
    """
    global _last_opportunistic_sweep
    interval = max(1.0, settings.QSMREVIEW_JOB_STALE_SECONDS / 3)
    now = time.monotonic()
    if now - _last_opportunistic_sweep < interval:
        return []
    _last_opportunistic_sweep = now
    try:
        return jobs_sweep_stale()
    except Exception:  # a failed sweep must not break the page that triggered it
        log.exception("opportunistic stale-job sweep failed")
        return []
