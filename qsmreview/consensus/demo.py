"""The demo study's consensus: computed at once for every rated session when the demo loads, so a
new user sees the lesion table, ROIs, measurements and agreement on the demo's QSM (the phantom's
true susceptibility) without waiting for a worker.

Runs :func:`qsmreview.consensus.services.consensus_run` synchronously as the system actor.
Idempotent: a session with a current run is left alone. The consensus job the raters'
submissions queued finds the run up to date and stores nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qsmreview.access import system
from qsmreview.consensus.inputs import all_raters_submitted
from qsmreview.consensus.models import ConsensusRun
from qsmreview.consensus.services import consensus_run
from qsmreview.errors import DomainError
from qsmreview.studies.models import Session, Study


@dataclass
class DemoConsensus:
    #: "MS001" for every session whose consensus this call computed.
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def demo_consensus_ensure(*, study: Study, progress: Callable[[str], None] | None = None) -> DemoConsensus:
    """Compute the consensus of every session of the study whose raters all submitted and that has
    no current run yet."""
    result = DemoConsensus()
    sessions = Session.objects.filter(subject__study=study).select_related("subject__study").order_by("subject__code")
    for session in sessions:
        if ConsensusRun.objects.filter(session=session, current=True).exists() or not all_raters_submitted(session):
            continue
        try:
            consensus_run(by=system("demo loader"), session=session, trigger="demo loaded")
        except DomainError as exc:
            result.skipped.append(f"{session.subject.code}: {exc.message}")
        else:
            result.computed.append(session.subject.code)
    if progress is not None and (result.computed or result.skipped):
        progress(
            f"  consensus computed: {', '.join(result.computed) or 'none'}"
            + (f"; skipped: {'; '.join(result.skipped)}" if result.skipped else "")
        )
    return result
