"""Reads shared by the API and the pages."""

from __future__ import annotations

from typing import Any

from qsmreview.reports.filters import Filters
from qsmreview.reports.services import STATISTICS_KIND


def pending_job(study: Any, filters: Filters) -> Any:
    """A statistics job queued or running for the study under these filters, or None."""
    from qsmreview.jobs.models import ACTIVE_STATUSES, Job

    return (
        Job.objects.filter(study=study, kind=STATISTICS_KIND, status__in=ACTIVE_STATUSES,
                           dedupe_key=f"{STATISTICS_KIND}:study:{study.pk}:{filters.key}")
        .order_by("-created_at")
        .first()
    )


def newest_job(study: Any, filters: Filters) -> Any:
    """The newest statistics job of the study under these filters, whatever its state, or None."""
    from qsmreview.jobs.models import Job

    return (
        Job.objects.filter(study=study, kind=STATISTICS_KIND, dedupe_key=f"{STATISTICS_KIND}:study:{study.pk}:{filters.key}")
        .order_by("-created_at", "-pk")
        .first()
    )
