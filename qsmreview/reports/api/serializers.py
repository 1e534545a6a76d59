"""Serializers of the statistics API: inputs validate, outputs render; neither writes."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qsmreview.processing.api.serializers import JobBriefSerializer
from qsmreview.reports.filters import EXCLUDED, SOURCE_HELP
from qsmreview.studies.api.serializers import ErrorSerializer, StrictInput

__all__ = ["ErrorSerializer"]


class FiltersSerializer(serializers.Serializer):
    source = serializers.CharField(default="all", help_text=SOURCE_HELP)
    excluded = serializers.ChoiceField(choices=EXCLUDED, default="exclude")
    solver = serializers.CharField(default="", help_text="a QSM solver, or empty for the current consensus")


class RequestInputSerializer(StrictInput, serializers.Serializer):
    source = serializers.CharField(required=False, allow_blank=True, max_length=160, help_text=SOURCE_HELP)
    excluded = serializers.ChoiceField(choices=EXCLUDED, required=False)
    solver = serializers.CharField(required=False, allow_blank=True, max_length=32)


class SnapshotOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filters = FiltersSerializer()
    inputs = serializers.JSONField(help_text="measurement sets and imported tables (ids, checksums) that went in")
    input_digest = serializers.CharField()
    result = serializers.JSONField(help_text="the analysis (qsmreview.stats Analysis.as_dict())")
    versions = serializers.JSONField()
    trigger = serializers.CharField()
    job = serializers.IntegerField(source="job_id", allow_null=True)
    compute_seconds = serializers.FloatField()
    created_at = serializers.DateTimeField()
    age_seconds = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_age_seconds(self, obj: Any) -> float:
        return (timezone.now() - obj.created_at).total_seconds()


class StatisticsOutputSerializer(serializers.Serializer):
    filters = FiltersSerializer()
    up_to_date = serializers.BooleanField(help_text="the snapshot was made from the current lesion table")
    snapshot = SnapshotOutputSerializer(allow_null=True)
    job = JobBriefSerializer(allow_null=True, help_text="a statistics job queued or running for these filters")


class StudyLesionOutputSerializer(serializers.Serializer):
    subject = serializers.CharField()
    lesion = serializers.CharField()
    lesion_type = serializers.CharField()
    portion = serializers.CharField()
    relative_susceptibility_ppm = serializers.FloatField(allow_null=True)
    excluded = serializers.BooleanField()
    exclusion_reason = serializers.CharField()
    source = serializers.CharField()
    session = serializers.IntegerField(allow_null=True)
    consensus_run = serializers.IntegerField(allow_null=True)
    consensus_lesion = serializers.IntegerField(allow_null=True)


class StudyPatientOutputSerializer(serializers.Serializer):
    subject = serializers.CharField()
    sex = serializers.CharField()
    age_years = serializers.FloatField(allow_null=True)
    disease_duration_years = serializers.FloatField(allow_null=True)
    phenotype = serializers.CharField()
    treatment = serializers.CharField()
    n_lesions = serializers.IntegerField()
    n_wm = serializers.IntegerField()
    n_cortical = serializers.IntegerField()
    n_mixed = serializers.IntegerField()
    n_unclassified = serializers.IntegerField()
    mean_wm_ppm = serializers.FloatField(allow_null=True)
    mean_cortical_ppm = serializers.FloatField(allow_null=True)
    mean_mixed_wm_ppm = serializers.FloatField(allow_null=True)
    mean_mixed_cortical_ppm = serializers.FloatField(allow_null=True)


class ImportedTableOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    uploaded_by = serializers.CharField(source="who")
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    n_rows = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ImportInputSerializer(StrictInput, serializers.Serializer):
    file = serializers.FileField(help_text="the lesion table, CSV or TSV, UTF-8")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
