"""Assignments, revisions and their audit trail in Django's admin: read-only, study-scoped.

Staff see the rows of the studies they administer (superusers: all), as for series
(:class:`~qsmreview.studies.admin.StudyScopedAdmin`). Nothing is added, changed or deleted here:
assigning, unassigning and reopening go through the study's assignments page and the API, which
call the services (rights checks and the audit trail); revisions are immutable.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from qsmreview.annotations.models import Assignment, AssignmentEvent, Revision
from qsmreview.studies.admin import ReadOnlyInline, StudyScopedAdmin, scoped_filter


class ReadOnlyStudyScopedAdmin(StudyScopedAdmin):
    """Lists and shows the rows of the user's studies; never adds, changes or deletes them."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class EventInline(ReadOnlyInline):
    model = AssignmentEvent
    fields = ("created_at", "action", "by", "by_label", "reason")
    readonly_fields = fields


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "session__subject__study"
    list_display = ("id", "session", "rater", "status", "active", "lesion_count", "last_saved_at", "submitted_at")
    list_filter = ("status", "active", scoped_filter("session__subject__study"))
    search_fields = ("session__subject__code", "session__label", "rater__username")
    list_select_related = ("session__subject__study", "rater")
    inlines = [EventInline]


@admin.register(Revision)
class RevisionAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "assignment__session__subject__study"
    list_display = ("id", "assignment", "number", "kind", "author", "size_bytes", "created_at")
    list_filter = ("kind", scoped_filter("assignment__session__subject__study"))
    search_fields = ("assignment__session__subject__code", "assignment__rater__username", "sha256")
    list_select_related = ("assignment__session__subject__study", "assignment__rater", "author")


@admin.register(AssignmentEvent)
class AssignmentEventAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "assignment__session__subject__study"
    list_display = ("created_at", "assignment", "action", "by", "by_label", "reason")
    list_filter = ("action", scoped_filter("assignment__session__subject__study"))
    search_fields = ("assignment__session__subject__code", "assignment__rater__username", "reason")
    list_select_related = ("assignment__session__subject__study", "assignment__rater", "by")
