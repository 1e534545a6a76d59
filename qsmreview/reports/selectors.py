"""Reads of a study's lesion table, patient table and statistics snapshots.

Scoped by :func:`qsmreview.access.studies_with_statistics_visible_to` (the study's admins and PI,
superusers); a rater or an outsider gets :class:`~qsmreview.errors.NotFound`.

The study's lesion table is, with the filters (:mod:`qsmreview.reports.filters`):

- the rows of the **current measurement set of the current consensus run** of every session
  (``source`` all or consensus); a lesion is named by its consensus number, prefixed by the
  session label when the subject has more than one session with a consensus;
- the rows of every **imported table** of the study (``source`` all or imported);
- without the rows that QC excluded unless ``excluded=include``;
- with ``solver``, each session's newest run measured on that solver's QSM instead of the current
  one, and no imported table (they record no solver);
- with ``source=rater:<username>``, instead, the rater's own lesions as measured by those same
  runs (:class:`~qsmreview.consensus.models.RaterLesionRow`), named by the rater's lesion number;
  a run made before raters' lesions were measured contributes nothing and is listed in the
  inputs as not measured.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qsmreview.access import AnyUser, studies_with_statistics_visible_to
from qsmreview.consensus.models import LesionRow as ConsensusRow
from qsmreview.consensus.models import MeasurementSet, RaterLesionRow
from qsmreview.errors import NotFound, ValidationFailed
from qsmreview.reports.filters import Filters, parse_filters
from qsmreview.reports.models import ImportedLesionRow, ImportedLesionTable, StatisticsSnapshot
from qsmreview.studies.models import Study, Subject

#: Columns of the study lesion table (JSON and CSV): the exchanged columns first.
LESION_COLUMNS = (
    "subject",
    "lesion",
    "lesion_type",
    "portion",
    "relative_susceptibility_ppm",
    "excluded",
    "exclusion_reason",
    "source",
    "session",
    "consensus_run",
    "consensus_lesion",
)

#: Columns of the patient table (like the reference study's Table 1).
PATIENT_COLUMNS = (
    "subject",
    "sex",
    "age_years",
    "disease_duration_years",
    "phenotype",
    "treatment",
    "n_lesions",
    "n_wm",
    "n_cortical",
    "n_mixed",
    "n_unclassified",
    "mean_wm_ppm",
    "mean_cortical_ppm",
    "mean_mixed_wm_ppm",
    "mean_mixed_cortical_ppm",
)


def study_for(user: AnyUser, pk: Any) -> Study:
    """The study if the user may read its statistics; else NotFound (as if it did not exist)."""
    try:
        study = studies_with_statistics_visible_to(user).filter(pk=int(pk)).first()
    except (TypeError, ValueError):
        study = None
    if study is None:
        raise NotFound("no such study")
    return study


@dataclass(frozen=True)
class StudyTable:
    """The study's lesion table under some filters, and what it was made from."""

    rows: list[dict[str, Any]]
    inputs: dict[str, Any]
    digest: str


_SET_FIELDS = ("pk", "number", "run_id", "run__session_id", "run__session__label", "run__session__subject__code")


def current_measurement_sets(study: Study, solver: str = "") -> list[dict[str, Any]]:
    """The current measurement set of each session's current consensus run; with ``solver``, of
    each session's newest succeeded run measured on a QSM made by that solver."""
    sets = MeasurementSet.objects.filter(current=True, run__status="succeeded", run__session__subject__study=study)
    if not solver:
        return list(
            sets.filter(run__current=True)
            .order_by("run__session__subject__code", "run__session__label")
            .values(*_SET_FIELDS)
        )
    newest: dict[int, dict[str, Any]] = {}
    for s in (
        sets.filter(run__qsm_series__provenance__parameters__solver=solver)
        .order_by("run__session_id", "-run__created_at", "-run_id")
        .values(*_SET_FIELDS)
    ):
        newest.setdefault(s["run__session_id"], s)
    return sorted(newest.values(), key=lambda s: (s["run__session__subject__code"], s["run__session__label"]))


def solvers(study: Study) -> list[str]:
    """The QSM solvers of the study's succeeded consensus runs (for the solver filter)."""
    from qsmreview.consensus.models import ConsensusRun

    found = set()
    for provenance in ConsensusRun.objects.filter(
        session__subject__study=study, status="succeeded", qsm_series__isnull=False
    ).values_list("qsm_series__provenance", flat=True):
        solver = ((provenance or {}).get("parameters") or {}).get("solver") if isinstance(provenance, dict) else None
        if isinstance(solver, str) and solver:
            found.add(solver)
    return sorted(found)


def raters(study: Study) -> list[str]:
    """The raters whose submitted work went into a current consensus run of the study (for the
    source filter's ``rater:<username>``)."""
    from qsmreview.consensus.models import ConsensusRun

    names: set[str] = set()
    for revisions in ConsensusRun.objects.filter(
        session__subject__study=study, status="succeeded", current=True
    ).values_list("revisions", flat=True):
        names.update(str(r.get("rater")) for r in revisions or [] if isinstance(r, dict) and r.get("rater"))
    return sorted(names)


def study_filters(study: Study, data: Any) -> Filters:
    """:func:`~qsmreview.reports.filters.parse_filters`, and a ``rater:<username>`` source must
    name one of the study's raters (:func:`raters`); else ValidationFailed."""
    filters = parse_filters(data)
    known = raters(study) if filters.rater else []
    if filters.rater and filters.rater not in known:
        names = ", ".join(known) or "none yet"
        raise ValidationFailed(f"no rater {filters.rater!r} in this study's consensus runs (raters: {names})",
                               field="source")
    return filters


def _session_name(s: dict[str, Any], per_subject: Counter, lesion: int) -> str:
    """A lesion's name in the study table: its number, prefixed by the session label when the
    subject has more than one session in the table."""
    if per_subject[s["run__session__subject__code"]] > 1:
        return f"{s['run__session__label']}:{lesion}"
    return str(lesion)


def _measured_row(
    s: dict[str, Any], per_subject: Counter, r: dict[str, Any], *, source: str, consensus_lesion: int | None
) -> dict[str, Any]:
    """A study-table row of a lesion measured by a consensus run (``s``: its measurement set's
    values; ``r``: the row's; QC exclusion only on consensus rows)."""
    return {
        "subject": s["run__session__subject__code"],
        "lesion": _session_name(s, per_subject, r["lesion"]),
        "lesion_type": r["lesion_type"] or "unclassified",
        "portion": r["portion"] if r["lesion_type"] else "",
        "relative_susceptibility_ppm": r["relative_susceptibility_ppm"],
        "excluded": bool(r.get("excluded", False)),
        "exclusion_reason": r.get("exclusion_reason", ""),
        "source": source,
        "session": s["run__session_id"],
        "consensus_run": s["run_id"],
        "consensus_lesion": consensus_lesion,
    }


def _rater_rows(sets: list[dict[str, Any]], rater: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rater's own lesions of the runs of ``sets``: (rows, one input entry per run)."""
    from qsmreview.consensus.models import ConsensusRun

    per_subject = Counter(s["run__session__subject__code"] for s in sets)
    by_run = {s["run_id"]: s for s in sets}
    measured = {
        pk: rater in ((summary or {}).get("rater_lesions") or {})
        for pk, summary in ConsensusRun.objects.filter(pk__in=list(by_run)).values_list("pk", "summary")
    }
    rows = []
    for r in RaterLesionRow.objects.filter(run_id__in=list(by_run), rater=rater).order_by("run_id", "lesion", "portion").values(
        "run_id", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm", "extras"
    ):
        extras = r["extras"] or {}
        rows.append({
            **_measured_row(by_run[r["run_id"]], per_subject, r, source=f"rater:{rater}", consensus_lesion=None),
            "candidate": extras.get("candidate"),
            "centroid_mm": extras.get("centroid_mm"),
        })
    runs = [
        {"consensus_run": s["run_id"], "session": s["run__session_id"], "subject": s["run__session__subject__code"],
         "rater_measured": measured.get(s["run_id"], False)}
        for s in sets
    ]
    return rows, runs


def lesion_table(study: Study, filters: Filters) -> StudyTable:
    """The study's lesion table (see the module's docstring) with its inputs and their digest."""
    rows: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    if filters.rater:
        rows, runs = _rater_rows(current_measurement_sets(study, filters.solver), filters.rater)
        inputs = {"measurement_sets": [], "imported_tables": [], "rater": filters.rater, "rater_runs": runs,
                  "rows": len(rows)}
        return StudyTable(rows=rows, inputs=inputs, digest=input_digest(inputs, filters))
    if filters.source in ("all", "consensus"):
        sets = current_measurement_sets(study, filters.solver)
        per_subject = Counter(s["run__session__subject__code"] for s in sets)
        by_set = {s["pk"]: s for s in sets}
        qs = ConsensusRow.objects.filter(measurement_set_id__in=list(by_set)).order_by(
            "measurement_set_id", "lesion", "portion"
        )
        if not filters.include_excluded:
            qs = qs.filter(excluded=False)
        for r in qs.values(
            "measurement_set_id", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm",
            "excluded", "exclusion_reason",
        ):
            rows.append(_measured_row(by_set[r["measurement_set_id"]], per_subject, r, source="consensus",
                                      consensus_lesion=r["lesion"]))
    if filters.source in ("all", "imported") and not filters.solver:
        tables = list(
            ImportedLesionTable.objects.filter(study=study).order_by("pk").values("pk", "name", "sha256", "n_rows")
        )
        names = {t["pk"]: t["name"] for t in tables}
        for r in ImportedLesionRow.objects.filter(table__study=study).order_by("table_id", "line").values(
            "table_id", "subject", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm"
        ):
            rows.append({
                "subject": r["subject"],
                "lesion": r["lesion"],
                "lesion_type": r["lesion_type"],
                "portion": r["portion"],
                "relative_susceptibility_ppm": r["relative_susceptibility_ppm"],
                "excluded": False,
                "exclusion_reason": "",
                "source": f"imported:{names[r['table_id']]}",
                "session": None,
                "consensus_run": None,
                "consensus_lesion": None,
            })
    inputs = {
        "measurement_sets": [
            {"id": s["pk"], "number": s["number"], "consensus_run": s["run_id"], "session": s["run__session_id"],
             "subject": s["run__session__subject__code"]}
            for s in sets
        ],
        "imported_tables": [{"id": t["pk"], "name": t["name"], "sha256": t["sha256"]} for t in tables],
        "rows": len(rows),
    }
    return StudyTable(rows=rows, inputs=inputs, digest=input_digest(inputs, filters))


def input_digest(inputs: dict[str, Any], filters: Filters) -> str:
    """SHA-256 of the filters and the inputs' ids and checksums (measurement sets and consensus
    runs never change)."""
    key = {
        "filters": filters.as_dict(),
        "measurement_sets": sorted(s["id"] for s in inputs["measurement_sets"]),
        "imported_tables": sorted((t["id"], t["sha256"]) for t in inputs["imported_tables"]),
    }
    if inputs.get("rater_runs") is not None:
        key["rater_runs"] = sorted(r["consensus_run"] for r in inputs["rater_runs"])
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def patient_table(study: Study, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per subject of the lesion table (and per study subject without lesions): the
    demographics, lesions by type (a mixed lesion counts once) and mean relative susceptibility by
    type (ppm, over the subject's measured lesions or portions; None without one)."""
    lesions: dict[str, dict[str, str]] = defaultdict(dict)
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        lesions[r["subject"]][r["lesion"]] = r["lesion_type"]
        v = r["relative_susceptibility_ppm"]
        if v is not None and r["lesion_type"] != "unclassified":
            kind = r["lesion_type"] if r["lesion_type"] != "mixed" else f"mixed_{r['portion']}"
            values[r["subject"]][kind].append(float(v))
    subjects = {s.code: s for s in Subject.objects.filter(study=study)}
    out = []
    for code in sorted(set(subjects) | set(lesions)):
        s = subjects.get(code)
        types = Counter(lesions[code].values())
        out.append({
            "subject": code,
            "sex": s.sex if s else "",
            "age_years": s.age_years if s else None,
            "disease_duration_years": s.disease_duration_years if s else None,
            "phenotype": s.phenotype if s else "",
            "treatment": s.treatment if s else "",
            "n_lesions": len(lesions[code]),
            "n_wm": types["wm"],
            "n_cortical": types["cortical"],
            "n_mixed": types["mixed"],
            "n_unclassified": types["unclassified"],
            "mean_wm_ppm": _mean(values[code]["wm"]),
            "mean_cortical_ppm": _mean(values[code]["cortical"]),
            "mean_mixed_wm_ppm": _mean(values[code]["mixed_wm"]),
            "mean_mixed_cortical_ppm": _mean(values[code]["mixed_cortical"]),
        })
    return out


def latest_snapshot(study: Study, filters: Filters) -> StatisticsSnapshot | None:
    """The newest snapshot of the study under these filters (None if there is none)."""
    return StatisticsSnapshot.objects.filter(study=study, filters_key=filters.key).order_by("-created_at", "-pk").first()


def imported_tables(study: Study):
    return ImportedLesionTable.objects.filter(study=study).select_related("uploaded_by").order_by("-created_at", "-pk")
