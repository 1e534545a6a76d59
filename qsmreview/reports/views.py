"""The PI pages: the study dashboard (progress, Table 1, Table 3, Fig 2A/2B, agreement) and the
lesion-table import page. Reads through :mod:`qsmreview.reports.selectors` (the study's admins and
PI, superusers; everyone else 404)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from qsmreview.access import can_manage_study
from qsmreview.consensus import selectors as consensus_selectors
from qsmreview.errors import DomainError, NotFound, ValidationFailed
from qsmreview.reports import figures, selectors
from qsmreview.reports.filters import DEFAULT, EXCLUDED, SOURCES, Filters
from qsmreview.reports.progress import study_progress
from qsmreview.reports.services import lesion_table_import, statistics_request
from qsmreview.reports.views_common import newest_job, pending_job

#: Table 3's rows: the lesion-level groups, then the patient-level ones.
GROUP_ORDER = ("wm_lesions", "cortical_lesions", "mixed_wm_portions", "mixed_cortical_portions")


def _study(request: HttpRequest, study_id: int) -> Any:
    try:
        return selectors.study_for(request.user, study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _filters(request: HttpRequest, study: Any) -> Filters:
    try:
        return selectors.study_filters(study, request.GET)
    except ValidationFailed as exc:
        messages.error(request, f"{exc.message}; showing the default filters")
        return DEFAULT


def _table3(result: dict[str, Any]) -> dict[str, Any]:
    groups = {g["name"]: g for g in result.get("groups", [])}
    return {
        "lesion": [groups[n] for n in GROUP_ORDER if n in groups],
        "patient": [groups[f"patient_{n}"] for n in GROUP_ORDER if f"patient_{n}" in groups],
        "comparisons": result.get("comparisons", []),
        "correction": result.get("correction", {}),
        "mixed_model": result.get("mixed_model", {}),
        "notes": result.get("notes", []),
    }


@login_required
def study_reports(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    filters = _filters(request, study)
    url = f"{reverse('study-reports', args=[study.pk])}?{filters.query()}"
    if request.method == "POST":
        try:
            statistics_request(by=request.user, study=study, filters=filters)
            messages.success(request, "The statistics are being computed.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect(url)
    table = selectors.lesion_table(study, filters)
    snapshot = selectors.latest_snapshot(study, filters)
    up_to_date = snapshot is not None and snapshot.input_digest == table.digest
    # A queued job on an up-to-date snapshot will find nothing to do: no progress to show.
    job = None if up_to_date else pending_job(study, filters)
    failed = None
    if not up_to_date and job is None:
        last = newest_job(study, filters)
        if last is not None and last.status == "failed" and (snapshot is None or last.created_at > snapshot.created_at):
            failed = last  # shown with its message; "Compute again" asks once more
        else:
            # A filter combination without a snapshot, or whose snapshot is older than the
            # measurements, is computed as a job, its progress shown here.
            trigger = "opened on the dashboard" + ("" if snapshot is None else ": the measurements changed")
            job = statistics_request(by=request.user, study=study, filters=filters, trigger=trigger)
    patients = selectors.patient_table(study, table.rows)
    current_runs = list(consensus_selectors.current_runs(study))
    pooled = consensus_selectors.pooled_agreement(current_runs)
    api = f"/api/v1/studies/{study.pk}"
    return render(
        request,
        "reports/dashboard.html",
        {
            "study": study,
            "filters": filters,
            "sources": SOURCES,
            "raters": selectors.raters(study),
            "rater_runs_unmeasured": sum(
                1 for r in table.inputs.get("rater_runs", []) if not r["rater_measured"]
            ),
            "excluded_choices": EXCLUDED,
            "solvers": selectors.solvers(study),
            "snapshot": snapshot,
            "snapshot_age": (timezone.now() - snapshot.created_at) if snapshot else None,
            "up_to_date": up_to_date,
            "job": job,
            "failed_job": failed,
            "table3": _table3(snapshot.result) if snapshot else None,
            "patients": patients,
            "progress": study_progress(study),
            "can_manage": can_manage_study(request.user, study),
            "imported": selectors.imported_tables(study)[:20],
            "figures": {
                "lesions": figures.lesion_points(table.rows, link=True),
                "patients": figures.patient_points(patients),
                "agreement": figures.agreement_points(pooled),
                "kinds": [label for _, label, _ in figures.KINDS],
            },
            "downloads": {
                "lesions": f"{api}/lesion-table/csv/?{filters.query()}",
                "patients": f"{api}/patient-table/csv/?{filters.query()}",
                "statistics": f"{api}/statistics/csv/?{filters.query()}",
            },
        },
    )


@login_required
def study_reports_import(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    if not can_manage_study(request.user, study):
        raise Http404("no such study")
    errors: list[dict[str, Any]] = []
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationFailed("choose a lesion table file", field="file")
            imported = lesion_table_import(
                by=request.user, study=study, name=request.POST.get("name") or upload.name, content=upload.read()
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            errors = list(exc.extra.get("rows", []))
        else:
            messages.success(request, f"Imported {imported.name}: {imported.n_rows} rows. The statistics are being computed.")
            return redirect("study-reports", study_id=study.pk)
    return render(request, "reports/import.html", {"study": study, "errors": errors,
                                                   "imported": selectors.imported_tables(study)})
