"""Pages for series: view one in NiiVue (read-only), and a study admin's upload page.

Reads go through :mod:`qsmreview.access`: a series the user may not see (a blinded QSM
for a rater, anything of another study) answers 404 as if it did not exist, and so does the upload
page for anyone but the study's admins. The pages hold no write logic: the viewer reads the API's
volume route, and the upload page posts to the series, subject, session and BIDS-import API
routes, whose services check rights again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from qsmreview.studies.api.views import volume_filename
from qsmreview.studies.models import Series, SeriesKind, Study
from qsmreview.access import (
    can_manage_study,
    series_visible_to,
    sessions_visible_to,
    studies_visible_to,
    subjects_visible_to,
)
from qsmreview.studies.templatetags.series_display import version_label
from qsmreview.studies.uploads import human_bytes, max_upload_bytes

#: Units of the stored values, per kind (QSM is stored in ppm; see recon and the processing jobs).
VALUE_UNITS = {SeriesKind.QSM: "ppm"}


def _series_json(series: Series) -> dict[str, Any]:
    """What the viewer needs to load and label one series."""
    version = version_label(series)
    return {
        "id": series.pk,
        "kind": series.kind,
        "kind_display": series.get_kind_display(),
        "label": series.label,
        "space": series.space,
        "version": series.version,
        "version_label": version,
        "is_current": series.is_current,
        "shape": series.shape,
        "echo_times_s": series.echo_times_s,
        "units": VALUE_UNITS.get(series.kind, ""),
        "url": reverse("api-series-volume", kwargs={"pk": series.pk}),
        "name": volume_filename(series),
        "title": " ".join(
            part for part in (series.get_kind_display(), series.label, version) if part
        ),
    }


@login_required
def series_view(request: HttpRequest, series_id: int) -> HttpResponse:
    """The series in NiiVue, with a window control and an overlay of the session's other series."""
    visible = series_visible_to(request.user).select_related("session__subject__study")
    series = visible.filter(pk=series_id).first()
    if series is None:
        raise Http404("no such series")
    others = (
        visible.filter(session_id=series.session_id)
        .exclude(pk=series.pk)
        .order_by("-is_current", "kind", "label", "space", "-version")
    )
    session = series.session
    return render(
        request,
        "studies/series_view.html",
        {
            "series": series,
            "session": session,
            "study": session.subject.study,
            "config": {"series": _series_json(series), "overlays": [_series_json(s) for s in others]},
        },
    )


def _managed_study_or_404(request: HttpRequest, study_id: int) -> Study:
    study = studies_visible_to(request.user).filter(pk=study_id).first()
    # Raters and PIs see the study but may not upload: 404, like the processing page for raters.
    if study is None or not can_manage_study(request.user, study):
        raise Http404("no such study")
    return study


@login_required
def study_upload(request: HttpRequest, study_id: int) -> HttpResponse:
    """Upload NIfTI files (with JSON sidecars) to a session, or a BIDS dataset as a zip."""
    study = _managed_study_or_404(request, study_id)
    subjects = subjects_visible_to(request.user).filter(study=study).order_by("code")
    sessions = sessions_visible_to(request.user).filter(subject__study=study).order_by("label")
    limit = max_upload_bytes()
    return render(
        request,
        "studies/upload.html",
        {
            "study": study,
            "config": {
                "study": study.pk,
                "subjects": [{"id": s.pk, "code": s.code} for s in subjects],
                "sessions": [{"id": s.pk, "subject": s.subject_id, "label": s.label} for s in sessions],
                "kinds": [{"value": v, "label": label} for v, label in SeriesKind.choices],
                "max_upload_bytes": limit,
                "urls": {
                    "subjects": reverse("api-subject-list"),
                    "sessions": reverse("api-session-list"),
                    "series": reverse("api-series-list"),
                    "bids": reverse("api-study-bids-import", kwargs={"pk": study.pk}),
                    "study_page": reverse("study", kwargs={"study_id": study.pk}),
                },
            },
            "max_upload": human_bytes(limit),
        },
    )
