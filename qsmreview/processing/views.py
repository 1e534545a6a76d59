"""The processing page of a study: series and jobs per session, buttons to run, live progress."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from qsmreview.errors import DomainError, NotFound
from qsmreview.processing.selectors import OVERVIEW_KINDS, processing_overview, processing_study_for
from qsmreview.processing.services import PROCESSING_KINDS, processing_submit, processing_submit_study
from qsmreview.studies.models import SeriesKind
from qsmreview.access import can_manage_study, sessions_visible_to

KIND_TITLES = {
    "coregister": "Coregister",
    "brain_mask": "Brain mask",
    "tissue": "Tissue classes",
    "qsm": "QSM",
}


def _study_or_404(request: HttpRequest, study_id: int):
    try:
        return processing_study_for(request.user, study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def study_processing(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_or_404(request, study_id)
    rows = processing_overview(study=study, user=request.user)
    table = [
        {
            "row": row,
            "cells": [(kind, row.series.get(kind, [])) for kind in OVERVIEW_KINDS],
            "jobs": [(kind, KIND_TITLES[kind], row.latest_jobs.get(kind)) for kind in PROCESSING_KINDS],
        }
        for row in rows
    ]
    return render(
        request,
        "processing/study.html",
        {
            "study": study,
            "table": table,
            "kind_headers": [SeriesKind(k).label for k in OVERVIEW_KINDS],
            "processing_kinds": [(k, KIND_TITLES[k]) for k in PROCESSING_KINDS],
            "can_run": can_manage_study(request.user, study),
            "protocol_json": json.dumps(study.protocol.get("qsm", {})),
        },
    )


def _parameters(request: HttpRequest) -> dict:
    raw = request.POST.get("parameters", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DomainError(f"parameters must be a JSON object: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise DomainError("parameters must be a JSON object")
    return value


@login_required
@require_POST
def run_study(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_or_404(request, study_id)
    try:
        result = processing_submit_study(
            study=study, kind=request.POST.get("kind", ""), by=request.user, parameters=_parameters(request)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Queued {len(result.submitted)} job(s).")
        for session, reason in result.skipped:
            messages.warning(request, f"Skipped {session}: {reason}")
    return redirect("study-processing", study_id=study.pk)


@login_required
@require_POST
def run_session(request: HttpRequest, session_id: int) -> HttpResponse:
    session = sessions_visible_to(request.user).select_related("subject__study").filter(pk=session_id).first()
    if session is None:
        raise Http404("no such session")
    study = _study_or_404(request, session.subject.study_id)
    try:
        job = processing_submit(
            session=session, kind=request.POST.get("kind", ""), by=request.user, parameters=_parameters(request)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Queued job #{job.pk} ({job.kind}) for {session}.")
    return redirect("study-processing", study_id=study.pk)
