"""``manage.py sweep_jobs``: re-queue or fail running jobs whose worker died (what beat runs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from qsmreview.jobs.services import jobs_sweep_stale


class Command(BaseCommand):
    help = "Re-queue or fail running jobs with no heartbeat for QSMREVIEW_JOB_STALE_SECONDS."

    def handle(self, *args: Any, **options: Any) -> None:
        swept = jobs_sweep_stale()
        for job in swept:
            self.stdout.write(f"job {job.pk} ({job.kind}): {job.status}")
        self.stdout.write(self.style.SUCCESS(f"swept {len(swept)} stale job(s)"))
