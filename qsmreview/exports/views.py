"""The study page's "Download BIDS export" button: the same zip as the API, for a signed-in
browser. The study's admins and PI; a 404 page for anyone else (raters included). Any other
refusal (a stored file gone) goes back to the study page with the message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from qsmreview.errors import DomainError, NotFound
from qsmreview.exports.api.views import export_zip_response


@login_required
def study_export(request: HttpRequest, study_id: int) -> HttpResponse:
    try:
        return export_zip_response(request.user, study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:  # a stored file gone: said on the study page
        messages.error(request, f"The export failed: {exc.message}")
        return redirect("study", study_id=study_id)
