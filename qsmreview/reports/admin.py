"""Statistics snapshots and imported lesion tables in Django's admin: read-only, study-scoped.

Snapshots are computed by the ``statistics`` job and tables imported on the import page or through
the API, which call the services (rights, row checks); here they are only read.
"""

from __future__ import annotations

from django.contrib import admin

from qsmreview.annotations.admin import ReadOnlyStudyScopedAdmin
from qsmreview.reports.models import ImportedLesionTable, StatisticsSnapshot
from qsmreview.studies.admin import scoped_filter


@admin.register(StatisticsSnapshot)
class StatisticsSnapshotAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "study"
    list_display = ("id", "study", "filters_key", "trigger", "compute_seconds", "created_at")
    list_filter = (scoped_filter("study"),)
    search_fields = ("filters_key", "trigger")
    list_select_related = ("study",)


@admin.register(ImportedLesionTable)
class ImportedLesionTableAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "study"
    list_display = ("id", "study", "name", "n_rows", "uploaded_by", "created_at")
    list_filter = (scoped_filter("study"),)
    search_fields = ("name", "sha256")
    list_select_related = ("study", "uploaded_by")
