"""Reads shared by the API and the pages."""

from __future__ import annotations

from typing import Any

from qsmreview.reports.filters import Filters
from qsmreview.reports.services import STATISTICS_KIND, statistics_dedupe_key


def pending_job(study: Any, filters: Filters) -> Any:
    """A statistics job queued or running for the study under these filters, or None."""
    from qsmreview.jobs.services import pending_job as pending

    return pending(statistics_dedupe_key(study, filters))


def newest_job(study: Any, filters: Filters) -> Any:
    """The newest statistics job of the study under these filters, whatever its state, or None."""
    from qsmreview.jobs.models import Job

    return (
        Job.objects.filter(study=study, kind=STATISTICS_KIND, dedupe_key=statistics_dedupe_key(study, filters))
        .order_by("-created_at", "-pk")
        .first()
    )
