"""The ``statistics`` job kind: a thin runner around :func:`qsmreview.reports.services.statistics_job_compute`."""

from __future__ import annotations

from typing import Any

from qsmreview.jobs.models import Job
from qsmreview.jobs.runners import Report, register_job_kind
from qsmreview.reports.filters import parse_filters
from qsmreview.reports.services import STATISTICS_KIND, statistics_job_compute


@register_job_kind(STATISTICS_KIND, title="Study statistics (lesion and patient tables, tests)")
def run_statistics(job: Job, report: Report) -> dict[str, Any]:
    snapshot = statistics_job_compute(
        job=job,
        filters=parse_filters(job.parameters.get("filters")),
        trigger=str(job.parameters.get("trigger", "")),
        progress=report,
    )
    return {"statistics_snapshot": snapshot.pk, "rows": snapshot.inputs.get("rows", 0)}
