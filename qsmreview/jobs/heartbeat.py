"""The heartbeat of a running job: proof for the stale sweep that its worker is alive."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.utils import timezone

log = logging.getLogger(__name__)


class Heartbeat:
    """A background thread that stamps ``heartbeat_at`` while a runner works.

    Long stages that report no progress (one big FFT, a registration) still look alive to the
    stale sweep. The thread uses its own database connection and closes it when it stops.
    """

    def __init__(self, *, job_id: int, attempt: int, interval: float) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self.last_beat: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-job-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))

    def _beat(self) -> None:
        from django.db import connection

        from qsmreview.jobs.models import Job, JobStatus

        mine = Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt)
        try:
            while not self._stop.wait(self.interval):
                now = timezone.now()
                try:
                    if not mine.update(heartbeat_at=now):
                        return  # finished, cancelled or given up: nothing left to keep alive
                except Exception:  # a missed beat is not fatal: the next one may get through
                    log.exception("heartbeat of job %s failed", self.job_id)
                    connection.close()
                else:
                    self.last_beat = now
        finally:
            connection.close()
