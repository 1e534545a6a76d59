"""Prepared exports: a study's BIDS derivatives dataset written as a zip by an ``export`` job and
kept in storage for download (docs/export.md). A row exists only once its file is stored (store
then commit; the orphan sweep covers a crash between the two). Immutable; the newest
:data:`KEEP_EXPORTS` of a study are kept, older ones are deleted with their files."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from qsmreview.studies.models import Study

#: Every prepared export is stored under this storage prefix (swept for orphans).
EXPORT_STORAGE_PREFIX = "exports"
#: Prepared exports kept per study (older ones are deleted when a new one is stored).
KEEP_EXPORTS = 3


def export_upload_to(instance: StudyExport, filename: str) -> str:
    return f"{EXPORT_STORAGE_PREFIX}/study-{instance.study_id}/{uuid.uuid4().hex[:12]}_{filename}"


class StudyExport(models.Model):
    """A study's BIDS derivatives dataset as one zip, prepared by an ``export`` job."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="exports")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to=export_upload_to, max_length=500)
    #: The download's file name (``<study>-bids.zip``).
    name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    n_sessions = models.PositiveIntegerField()
    n_files = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "-created_at", "-pk"]

    def __str__(self) -> str:
        return f"export {self.pk} of study {self.study_id}"
