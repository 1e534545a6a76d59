"""Celery tasks of the jobs app: thin wrappers that take ids and call the services.

Also signals a worker's readiness: when ``QSMREVIEW_WORKER_READY_FILE`` is set, the worker writes
its hostname into that file once it consumes messages and removes it on shutdown (a readiness
probe for orchestrators; the test suite waits on it).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from qsmreview.jobs import services


@shared_task(name="qsmreview.jobs.tasks.run_job", bind=True, ignore_result=True, acks_late=True)
def run_job(self: Any, job_id: int) -> None:
    """Run job ``job_id`` on this worker (a no-op unless the job is still queued)."""
    services.job_run(job_id=job_id, worker=self.request.hostname or socket.gethostname())


@shared_task(name="qsmreview.jobs.tasks.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> list[int]:
    """Re-queue or fail running jobs whose worker stopped sending heartbeats (celery beat, 60 s)."""
    return [job.pk for job in services.jobs_sweep_stale()]


def _ready_file() -> Path | None:
    name = os.environ.get("QSMREVIEW_WORKER_READY_FILE", "")
    return Path(name) if name else None


@worker_ready.connect
def _write_ready_file(sender: Any = None, **_: Any) -> None:
    path = _ready_file()
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(getattr(sender, "hostname", "") or socket.gethostname())
        tmp.replace(path)


@worker_shutdown.connect
def _remove_ready_file(**_: Any) -> None:
    path = _ready_file()
    if path is not None:
        path.unlink(missing_ok=True)
