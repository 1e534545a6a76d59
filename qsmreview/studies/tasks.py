"""Celery tasks of the studies app (thin wrappers around services)."""

from __future__ import annotations

from celery import shared_task

from qsmreview.studies.services.orphans import storage_sweep_orphans


@shared_task(name="qsmreview.studies.tasks.sweep_orphan_files", ignore_result=True)
def sweep_orphan_files() -> int:
    """Delete series files that no row references (celery beat, hourly); returns how many."""
    return len(storage_sweep_orphans().orphans)
