from __future__ import annotations

from rest_framework import serializers

from qsmreview.processing.services import PROCESSING_KINDS
from qsmreview.studies.templatetags.series_display import version_label


class ProcessingRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PROCESSING_KINDS)
    parameters = serializers.DictField(required=False, default=dict)


class JobBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    stage = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class SeriesBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField()
    space = serializers.CharField()
    version = serializers.IntegerField()
    derived_by = serializers.IntegerField(source="derived_by_id", allow_null=True)
    version_label = serializers.SerializerMethodField()

    def get_version_label(self, series) -> str:
        """The words of the study and processing pages (``v1 · own grid (native)``)."""
        return version_label(series)


class SessionRowSerializer(serializers.Serializer):
    session = serializers.IntegerField(source="session.pk")
    subject = serializers.CharField(source="session.subject.code")
    label = serializers.CharField(source="session.label")
    series = serializers.SerializerMethodField()
    latest_jobs = serializers.SerializerMethodField()

    def get_series(self, row) -> dict[str, list[dict]]:
        return {k: SeriesBriefSerializer(v, many=True).data for k, v in row.series.items()}

    def get_latest_jobs(self, row) -> dict[str, dict]:
        return {k: JobBriefSerializer(v).data for k, v in row.latest_jobs.items()}


class BatchResultSerializer(serializers.Serializer):
    submitted = JobBriefSerializer(many=True)
    skipped = serializers.SerializerMethodField()

    def get_skipped(self, result) -> list[dict]:
        return [{"session": s.pk, "subject": s.subject.code, "reason": r} for s, r in result.skipped]
