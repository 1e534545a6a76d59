"""Prepared exports: the study's BIDS derivatives zip written by an ``export`` job on the workers
and kept for download, so a large study never ties up a web request and its progress shows.

- :func:`export_request` queues the job (the study's admins and PI; the system submits it on the
  requester's behalf, as for statistics). A job already queued or running for the study is
  returned instead of a second one.
- :func:`export_prepare` is the job's work: :func:`~qsmreview.exports.services.study_export_zip`
  as the requester (their rights checked again when it runs), stored (store then
  commit), recorded as a :class:`~qsmreview.exports.models.StudyExport`; older exports beyond the
  newest :data:`~qsmreview.exports.models.KEEP_EXPORTS` are deleted with their files.
- :func:`exports_of` and :func:`export_for_download` read them (admins and PI; 404 for everyone
  else, as for the study itself).

The synchronous route (``GET /api/v1/studies/<id>/export/bids.zip``) and ``manage.py
export_study`` still build the same zip on the spot.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction

from qsmreview.access import Actor, system, user_or_none
from qsmreview.errors import NotFound
from qsmreview.exports.models import KEEP_EXPORTS, StudyExport
from qsmreview.exports.services import study_export_zip, study_for_export
from qsmreview.jobs.runners import Report
from qsmreview.studies.models import Study
from qsmreview.studies.storage import sha256_of_path, storage_delete_quietly

#: The job kind that prepares a study's export.
EXPORT_KIND = "export"


def _dedupe_key(study: Study) -> str:
    return f"{EXPORT_KIND}:study:{study.pk}"


def pending_export_job(study: Study) -> Any:
    """The export job queued or running for the study, or None."""
    from qsmreview.jobs.services import pending_job

    return pending_job(_dedupe_key(study))


def export_request(*, by: Actor, study: Study | int | str) -> Any:
    """Queue an ``export`` job for the study (its admins and PI); the queued or running one if
    there is one.

    Raises
    ------
    NotFound
        ``by`` may not export the study (raters, outsiders) or it does not exist.
    """
    from qsmreview.jobs.services import job_submit_or_pending

    found = study_for_export(by=by, study=study)
    return job_submit_or_pending(
        kind=EXPORT_KIND,
        parameters={"requested_by": getattr(user_or_none(by), "pk", None)},
        study=found,
        by=system(f"export for {by.get_username()}"),
        dedupe_key=_dedupe_key(found),
    )


def _requester(job: Any) -> Actor:
    """Who the export is made for: the requesting user (their rights are checked again), or the
    system when none is recorded (or the user is gone)."""
    pk = (job.parameters or {}).get("requested_by")
    user = get_user_model().objects.filter(pk=pk, is_active=True).first() if pk else None
    return user if user is not None else system(f"job #{job.pk}")


def export_prepare(*, job: Any, progress: Report | None = None) -> StudyExport:
    """Write the job's study as a BIDS derivatives zip, store it and record it (the job's work).

    Raises
    ------
    NotFound
        The requester may no longer export the study.
    ValidationFailed / Gone
        As :func:`~qsmreview.exports.services.study_export` (a volume off its grid, a stored file
        missing). Nothing is stored in any of these cases.
    """
    report = progress or (lambda fraction, stage: None)
    by = _requester(job)
    stored: str | None = None
    storage = StudyExport._meta.get_field("file").storage
    try:
        with study_export_zip(by=by, study=job.study_id,
                              report=lambda fraction, stage: report(0.05 + 0.8 * fraction, stage)) as (path, name, written):
            report(0.9, "storing the zip")
            sha256, size = sha256_of_path(path)
            export = StudyExport(study_id=job.study_id, job=job, requested_by=user_or_none(by), name=name,
                                 sha256=sha256, size=size, n_sessions=len(written.sessions), n_files=len(written.files))
            with open(path, "rb") as fh:
                export.file.save(name, File(fh), save=False)
            stored = export.file.name
        with transaction.atomic():
            export.save()
            stale = list(StudyExport.objects.filter(study_id=job.study_id).order_by("-created_at", "-pk")[KEEP_EXPORTS:])
            StudyExport.objects.filter(pk__in=[e.pk for e in stale]).delete()
            names = [e.file.name for e in stale]
            transaction.on_commit(lambda: [storage_delete_quietly(storage, n) for n in names])
    except BaseException:
        storage_delete_quietly(storage, stored)
        raise
    report(0.99, "done")
    return export


def exports_of(*, by: Actor, study: Study | int | str) -> list[StudyExport]:
    """The study's prepared exports, newest first (admins and PI; else NotFound)."""
    found = study_for_export(by=by, study=study)
    return list(StudyExport.objects.filter(study=found).select_related("requested_by").order_by("-created_at", "-pk"))


def export_for_download(*, by: Actor, pk: Any) -> StudyExport:
    """A prepared export the user may download; else NotFound (as if it did not exist)."""
    try:
        export = StudyExport.objects.select_related("study").filter(pk=int(pk)).first()
    except (TypeError, ValueError, OverflowError):
        export = None
    if export is None:
        raise NotFound("no such export")
    try:
        study_for_export(by=by, study=export.study)
    except NotFound:
        raise NotFound("no such export") from None
    return export
