"""Input and output shapes of the jobs API. They validate and render; they never write."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from qsmreview.api.ids import IdField
from qsmreview.jobs.models import Job, JobStatus
from qsmreview.jobs.runners import job_kind_title


class JobSubmitSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=32, help_text="a registered kind that allows direct submission, e.g. 'selftest'")
    study = IdField(help_text="id of the study the job belongs to (you must be its admin)")
    session = IdField(required=False, allow_null=True, default=None)
    parameters = serializers.DictField(required=False, default=dict)
    dedupe_key = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class JobSerializer(serializers.ModelSerializer):
    """A job as the API shows it. ``can_cancel``/``can_retry`` say what the caller may do now."""

    kind_title = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField(help_text="what the job works on, in words")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    runtime_seconds = serializers.FloatField(read_only=True, allow_null=True)
    outputs = serializers.SerializerMethodField(help_text="ids of the series this job produced")
    can_cancel = serializers.SerializerMethodField()
    can_retry = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "kind_title", "target", "status", "progress", "stage", "parameters", "study",
            "session", "created_by", "retry_of", "created_at", "started_at", "finished_at",
            "heartbeat_at", "runtime_seconds", "attempts", "cancel_requested", "worker", "error",
            "result", "outputs", "can_cancel", "can_retry",
        ]
        read_only_fields = fields

    def get_kind_title(self, job: Job) -> str:
        return job_kind_title(job.kind)

    def get_target(self, job: Job) -> str:
        parts = []
        if job.study_id is not None:
            parts.append(job.study.name)
        if job.session_id is not None:
            parts.append(f"{job.session.subject.code} ses-{job.session.label}")
        return " / ".join(parts)

    def get_outputs(self, job: Job) -> list[int]:
        return sorted(s.pk for s in job.outputs.all())

    def _manages(self, job: Job) -> bool:
        managed: set[int] | None = self.context.get("managed_study_ids")
        return managed is not None and job.study_id in managed

    def get_can_cancel(self, job: Job) -> bool:
        return self._manages(job) and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    def get_can_retry(self, job: Job) -> bool:
        return self._manages(job) and job.status in (JobStatus.FAILED, JobStatus.CANCELLED)


class JobKindSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    submittable = serializers.BooleanField(help_text="can be submitted with POST /api/v1/jobs/")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {"name": instance.name, "title": instance.title, "submittable": instance.submittable}
