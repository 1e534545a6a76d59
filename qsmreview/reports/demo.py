"""The demo's statistics: a second demo study with a synthetic cohort shaped like the reference
study, and the phantom demo study's own statistics, computed at load so a new PI sees Table 3 and
Fig 2 at once (no worker needed).

The cohort is :func:`qsmreview.stats.synthetic.reference_cohort` (seed 0): the reference study's
14 patients with their lesion counts by type and values drawn to match its summary statistics
(Table 3), imported as a lesion table. Idempotent: what exists is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from qsmreview.access import system
from qsmreview.reports.models import ImportedLesionTable
from qsmreview.reports.services import lesion_table_import, statistics_compute
from qsmreview.stats.synthetic import REFERENCE_COUNTS, reference_cohort, subject_name
from qsmreview.stats.table import format_table
from qsmreview.studies.models import Membership, Role, Study, Subject

COHORT_STUDY_NAME = "Demo: reference cohort (synthetic statistics)"
COHORT_STUDY_DESCRIPTION = (
    "A synthetic cohort shaped like the reference 7T study: its 14 patients' lesion counts by type, "
    "relative susceptibility values drawn to match its Table 3 (qsmreview.stats.synthetic, seed 0). "
    "No scans: the lesion table is imported."
)
COHORT_TABLE_NAME = "reference_cohort_seed0.csv"
#: Members of the cohort study: the demo's admin and PI (raters would see nothing of it).
COHORT_ROLES = {"admin": Role.ADMIN, "pi": Role.PI}


def demo_cohort_study_ensure(*, users: Mapping[str, Any]) -> tuple[Study, bool]:
    """The cohort study with its subjects and imported table; True when the table was imported now."""
    from qsmreview.studies.services.studies import membership_set, study_create, subject_create

    admin = users["admin"]
    study = Study.objects.filter(name=COHORT_STUDY_NAME).first()
    if study is None:
        study = study_create(by=admin, name=COHORT_STUDY_NAME, description=COHORT_STUDY_DESCRIPTION,
                             field_strength_t=7.0)
    for username, role in COHORT_ROLES.items():
        user = users.get(username)
        if user is not None and not Membership.objects.filter(study=study, user=user, role=role).exists():
            membership_set(study=study, by=admin, user=user, role=role)
    for i in range(len(REFERENCE_COUNTS)):
        code = subject_name(i)
        if not Subject.objects.filter(study=study, code=code).exists():
            subject_create(study=study, by=admin, code=code, extra={"synthetic": True})
    if ImportedLesionTable.objects.filter(study=study, name=COHORT_TABLE_NAME).exists():
        return study, False
    content = format_table(reference_cohort(seed=0)).encode()
    lesion_table_import(by=admin, study=study, name=COHORT_TABLE_NAME, content=content)
    return study, True


def demo_reports_ensure(
    *, users: Mapping[str, Any], phantom_study: Study, progress: Callable[[str], None] | None = None
) -> list[Study]:
    """The cohort study, and an up-to-date statistics snapshot of it and of the phantom study."""
    cohort, imported = demo_cohort_study_ensure(users=users)
    studies = [phantom_study, cohort]
    for study in studies:
        snapshot = statistics_compute(by=system("demo loader"), study=study, trigger="demo")
        if progress is not None:
            progress(f"  statistics of {study.name!r}: snapshot #{snapshot.pk} ({snapshot.inputs.get('rows', 0)} rows)")
    return studies
