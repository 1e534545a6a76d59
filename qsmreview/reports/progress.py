"""The dashboard's progress panel: how far the study is, step by step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from qsmreview.studies.models import Series, Session, Study


@dataclass(frozen=True)
class Step:
    name: str
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def study_progress(study: Study) -> dict[str, Any]:
    """Sessions with a T2* magnitude (uploads), a current QSM (reconstructions), a current
    consensus run, QC decisions; and each rater's submitted assignments of their active ones."""
    from qsmreview.annotations.models import Assignment
    from qsmreview.consensus.models import ConsensusDecision, ConsensusRun

    sessions = Session.objects.filter(subject__study=study)
    total = sessions.count()

    def with_series(kind: str) -> int:
        return Series.objects.filter(session__in=sessions, kind=kind, is_current=True).values("session").distinct().count()

    consensus = ConsensusRun.objects.filter(session__in=sessions, current=True, status="succeeded").count()
    qc = ConsensusDecision.objects.filter(run__session__in=sessions, run__current=True).values("run__session").distinct().count()
    steps = [
        Step("Uploads (T2* magnitude)", with_series("t2star_mag"), total),
        Step("Reconstructions (QSM)", with_series("qsm"), total),
        Step("Consensus", consensus, total),
        Step("QC (sessions with a decision)", qc, consensus),
    ]
    raters = (
        Assignment.objects.filter(session__in=sessions, active=True)
        .values("rater__username")
        .annotate(total=Count("pk"), done=Count("pk", filter=Q(status="submitted")))
        .order_by("rater__username")
    )
    return {
        "sessions": total,
        "steps": steps,
        "raters": [Step(r["rater__username"], r["done"], r["total"]) for r in raters],
    }
