"""The export pages: the study's prepared BIDS exports (``/studies/<id>/exports/``: list, progress
of the ``export`` job, "Prepare a new export"), their download, and the older direct download
(``/studies/<id>/export/bids.zip``, the same zip built in the request). The study's admins and PI;
a 404 page for anyone else (raters included). Any other refusal (a stored file gone) goes back to
the study's page with the message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from qsmreview.errors import DomainError, NotFound
from qsmreview.exports.api.views import export_file_response, export_zip_response
from qsmreview.exports.models import KEEP_EXPORTS
from qsmreview.exports.prepared import export_for_download, export_request, exports_of, pending_export_job
from qsmreview.exports.services import study_for_export


@login_required
def study_export(request: HttpRequest, study_id: int) -> HttpResponse:
    try:
        return export_zip_response(request.user, study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:  # a stored file gone: said on the study page
        messages.error(request, f"The export failed: {exc.message}")
        return redirect("study", study_id=study_id)


@login_required
def study_exports(request: HttpRequest, study_id: int) -> HttpResponse:
    try:
        study = study_for_export(by=request.user, study=study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.method == "POST":
        try:
            job = export_request(by=request.user, study=study)
            messages.success(request, f"The export is being prepared (job #{job.pk}).")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("study-exports", study_id=study.pk)
    job = pending_export_job(study)
    return render(request, "exports/study_exports.html", {
        "study": study,
        "exports": exports_of(by=request.user, study=study),
        "job": job,
        "keep": KEEP_EXPORTS,
    })


@login_required
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    try:
        export = export_for_download(by=request.user, pk=export_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    try:
        return export_file_response(request, export)
    except DomainError as exc:  # storage lost the zip: said on the exports page
        messages.error(request, f"The download failed: {exc.message}")
        return redirect("study-exports", study_id=export.study_id)
