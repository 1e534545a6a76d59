"""The jobs in Django's admin: read-only, with cancel and retry as actions (through the services).

Staff who are not superusers see only the jobs of the studies they administer; jobs that belong
to no study (self-tests without a study) are the superusers' alone.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from qsmreview.errors import DomainError
from qsmreview.jobs.models import Job
from qsmreview.jobs.services import job_cancel, job_retry
from qsmreview.studies.admin import StudyScopedAdmin, scoped_filter


@admin.register(Job)
class JobAdmin(StudyScopedAdmin):
    study_path = "study"
    list_display = ("id", "kind", "status", "progress", "stage", "study", "session", "worker", "attempts", "created_at", "finished_at")
    list_filter = ("status", "kind", scoped_filter("study"))
    search_fields = ("id", "kind", "stage", "error", "worker", "dedupe_key")
    date_hierarchy = "created_at"
    list_select_related = ("study", "session__subject")
    raw_id_fields = ("study", "session", "created_by", "retry_of")
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel_jobs", "retry_jobs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are submitted through services, which check kinds and duplicates

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a job is the record of what made its outputs

    def _each(self, request: HttpRequest, queryset: QuerySet[Job], action, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                action(job=job, by=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"job #{job.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{verb} {done} job(s)")

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset, job_cancel, "Cancelled")

    @admin.action(description="Retry selected jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset, job_retry, "Retried")
