"""The ``consensus`` job kind: a thin runner around :func:`qsmreview.consensus.services.consensus_run`."""

from __future__ import annotations

from typing import Any

from qsmreview.access import system
from qsmreview.consensus.services import CONSENSUS_KIND, consensus_run
from qsmreview.jobs.models import Job
from qsmreview.jobs.runners import Report, register_job_kind


@register_job_kind(CONSENSUS_KIND, title="Consensus lesions, reference ROIs and measurements")
def run_consensus(job: Job, report: Report) -> dict[str, Any]:
    run = consensus_run(
        by=system(f"job #{job.pk}"),
        session=job.session,
        job=job,
        trigger=str(job.parameters.get("trigger", "")),
        progress=report,
        force=bool(job.parameters.get("force", False)),
    )
    measurements = run.measurement_sets.get(current=True)
    return {
        "consensus_run": run.pk,
        "lesions": measurements.rows.values("lesion").distinct().count(),
        "candidates": run.candidates.count(),
    }
