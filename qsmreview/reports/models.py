"""Study statistics: imported lesion tables and immutable statistics snapshots.

An :class:`ImportedLesionTable` is a lesion table measured elsewhere and imported into a study
(CSV, validated by :mod:`qsmreview.stats.table`; nothing is stored when a row is wrong). A
:class:`StatisticsSnapshot` is one run of :func:`qsmreview.stats.analysis.analyse` on a study's
lesion table under a set of filters, with its provenance: which measurement sets and imported
tables (with checksums) went in, the filters, the library versions and the time. Snapshots are
never changed; a recomputation is a new snapshot, and pages read the newest one.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from qsmreview.studies.models import Study


class ImportedLesionTable(models.Model):
    """A lesion table CSV imported into a study (measurements made elsewhere). Immutable."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="imported_lesion_tables")
    name = models.CharField(max_length=200)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Who imported it when no user did (the demo loader, a management command).
    uploaded_by_label = models.CharField(max_length=200, blank=True)
    #: SHA-256 of the file's bytes as uploaded.
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    n_rows = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "-created_at", "-pk"]

    def __str__(self) -> str:
        return f"imported lesion table {self.name} of {self.study_id}"

    @property
    def who(self) -> str:
        return self.uploaded_by.get_username() if self.uploaded_by is not None else self.uploaded_by_label


class ImportedLesionRow(models.Model):
    """One row of an imported table, as validated (``lesion`` is text, as in the file)."""

    table = models.ForeignKey(ImportedLesionTable, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField()
    subject = models.CharField(max_length=64)
    lesion = models.CharField(max_length=64)
    lesion_type = models.CharField(max_length=12)
    portion = models.CharField(max_length=10, blank=True)
    relative_susceptibility_ppm = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["table", "line"]

    def __str__(self) -> str:
        return f"{self.subject} lesion {self.lesion} {self.portion} (table {self.table_id})"


class StatisticsSnapshot(models.Model):
    """The study's statistics under one filter combination, with provenance. Immutable."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="statistics_snapshots")
    #: The filters as a JSON object (:class:`qsmreview.reports.filters.Filters`).
    filters = models.JSONField()
    #: A canonical string of the filters, to find the newest snapshot of a combination.
    filters_key = models.CharField(max_length=200, db_index=True)
    #: Which inputs went in: {"measurement_sets": [{"id", "run", "session", "subject"}],
    #: "imported_tables": [{"id", "name", "sha256"}], "rows": n}.
    inputs = models.JSONField(default=dict)
    #: SHA-256 of the inputs (ids, checksums) and filters: equal digests, equal inputs.
    input_digest = models.CharField(max_length=64)
    #: ``Analysis.as_dict()``.
    result = models.JSONField(default=dict)
    #: Library versions (python, numpy, scipy, statsmodels, qsmreview).
    versions = models.JSONField(default=dict)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=200, blank=True)
    #: Seconds the analysis took.
    compute_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "-created_at", "-pk"]
        indexes = [models.Index(fields=["study", "filters_key", "-created_at"])]

    def __str__(self) -> str:
        return f"statistics snapshot {self.pk} of {self.study_id} ({self.filters_key})"
