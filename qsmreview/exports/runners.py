"""The ``export`` job kind: a thin runner around :func:`qsmreview.exports.prepared.export_prepare`."""

from __future__ import annotations

from typing import Any

from qsmreview.exports.prepared import EXPORT_KIND, export_prepare
from qsmreview.jobs.models import Job
from qsmreview.jobs.runners import Report, register_job_kind


@register_job_kind(EXPORT_KIND, title="BIDS export (zip)")
def run_export(job: Job, report: Report) -> dict[str, Any]:
    export = export_prepare(job=job, progress=report)
    return {"export": export.pk, "size": export.size, "sessions": export.n_sessions}
