"""Input and output serializers of the annotations API.

Inputs check shapes and types only (the services decide); outputs only render. Ids in bodies are
:class:`~qsmreview.api.ids.IdField`; unknown fields are refused (:class:`StrictInput`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qsmreview.annotations.models import Assignment, AssignmentEvent, AssignmentStatus, Revision
from qsmreview.api.ids import IdField, id_problem
from qsmreview.studies.api.serializers import ErrorSerializer, StrictInput
from qsmreview.studies.models import Series

__all__ = ["ErrorSerializer"]


# --- inputs ----------------------------------------------------------------------------------


class AssignInputSerializer(StrictInput):
    raters = serializers.ListField(child=IdField(), min_length=1, max_length=500, help_text="user ids of raters")
    sessions = serializers.ListField(
        child=IdField(), required=False, max_length=10_000, help_text="session ids (omit: every session of the study)"
    )


class UnassignInputSerializer(StrictInput):
    force = serializers.BooleanField(required=False, default=False, help_text="take saved work away (needs a reason)")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ReopenInputSerializer(StrictInput):
    reason = serializers.CharField(max_length=2000, help_text="why the case is reopened (kept in the audit trail)")


class SubmitInputSerializer(StrictInput):
    revision = IdField(allow_null=True, help_text="id of the latest revision")


class RestoreInputSerializer(StrictInput):
    parent = IdField(allow_null=True, help_text="id of the case's latest revision (null if none)")


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "nullable": True})
class OptionalIdFormField(serializers.Field):
    """An id in a form, where an empty value (or "null") means none."""

    def to_internal_value(self, data: Any) -> int | None:
        if data is None or (isinstance(data, str) and data.strip() in ("", "null")):
            return None
        number, problem = id_problem(data)
        if number is None:
            raise serializers.ValidationError(problem, code="invalid")
        return number

    def to_representation(self, value: Any) -> int | None:
        return None if value is None else int(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


@extend_schema_field(
    {
        "type": "string",
        "description": 'JSON text: [{"number": 1, "anchor_mm": [x, y, z], "vote": "cortical"|"wm"|"mixed"|"", '
        '"confidence": 1..5|null, "note": ""}, ...]',
    }
)
class JsonListTextField(serializers.Field):
    """A JSON list sent as text in a multipart form (the lesions)."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, (list, tuple)):
            value: Any = list(data)
        elif isinstance(data, str):
            try:
                value = json.loads(data, parse_constant=_no_constant) if data.strip() else []
            except (ValueError, RecursionError) as exc:
                raise serializers.ValidationError(f"not valid JSON: {exc}", code="invalid") from exc
        else:
            raise serializers.ValidationError("must be JSON text (a list of lesions)", code="invalid")
        if not isinstance(value, list):
            raise serializers.ValidationError("must be a JSON list of lesions", code="invalid")
        return value

    def to_representation(self, value: Any) -> str:
        return json.dumps(value)


class RevisionUploadInputSerializer(StrictInput):
    mask = serializers.FileField(help_text="the mask as NIfTI (.nii or .nii.gz) on the T2* grid")
    parent = OptionalIdFormField(
        required=False, default=None, help_text="id of the revision the edit started from (empty for the first save)"
    )
    lesions = JsonListTextField(required=False, default=list, help_text="the lesions shown, as JSON text")
    active_seconds = serializers.FloatField(
        required=False, default=0.0, min_value=0.0, max_value=1e9, help_text="editing time since the last save (s)"
    )


# --- outputs ---------------------------------------------------------------------------------


class AssignmentOutputSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="session.subject.study_id")
    subject = serializers.IntegerField(source="session.subject_id")
    subject_code = serializers.CharField(source="session.subject.code")
    session_label = serializers.CharField(source="session.label")
    rater = serializers.IntegerField(source="rater_id")
    rater_username = serializers.CharField(source="rater.username")
    assigned_by = serializers.CharField(source="assigned_by.username", allow_null=True, default=None)
    latest_revision = serializers.IntegerField(source="latest_revision_id", allow_null=True)
    submitted_revision = serializers.IntegerField(source="submitted_revision_id", allow_null=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "study",
            "subject",
            "subject_code",
            "session",
            "session_label",
            "rater",
            "rater_username",
            "status",
            "active",
            "assigned_by",
            "created_at",
            "latest_revision",
            "submitted_revision",
            "submitted_at",
            "last_saved_at",
            "lesion_count",
            "active_seconds",
        ]
        read_only_fields = fields


class PanelSerializer(serializers.ModelSerializer):
    """One volume of the case's viewer (served by the display route)."""

    title = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="the display volume (uint8 .nii)")
    name = serializers.SerializerMethodField(help_text="file name for the viewer (its format comes from it)")

    class Meta:
        model = Series
        fields = ["id", "kind", "label", "title", "url", "name"]
        read_only_fields = fields

    def get_title(self, series: Series) -> str:
        return f"{series.get_kind_display()} ({series.label})" if series.label else series.get_kind_display()

    def get_url(self, series: Series) -> str:
        return f"/api/v1/series/{series.pk}/display/"

    def get_name(self, series: Series) -> str:
        return f"series-{series.pk}.nii"


class AssignmentDetailOutputSerializer(AssignmentOutputSerializer):
    """An assignment with what the workspace needs to open it (``context["case"]``: a
    :class:`CaseView` computed by the view from the selectors)."""

    rateable = serializers.SerializerMethodField()
    not_rateable_reason = serializers.SerializerMethodField()
    panels = serializers.SerializerMethodField()
    min_lesion_diameter_mm = serializers.FloatField(source="session.subject.study.min_lesion_diameter_mm")
    read_only = serializers.SerializerMethodField(
        help_text="true unless the caller is the case's rater and the case is not submitted"
    )
    next_lesion_number = serializers.SerializerMethodField(
        help_text="the number for the next new lesion: 1 + the largest used in any revision of the case "
        "(conflict copies included), so an erased lesion's number is never reused"
    )

    class Meta(AssignmentOutputSerializer.Meta):
        fields = [
            *AssignmentOutputSerializer.Meta.fields,
            "rateable",
            "not_rateable_reason",
            "panels",
            "min_lesion_diameter_mm",
            "read_only",
            "next_lesion_number",
        ]
        read_only_fields = fields

    def _case(self) -> "CaseView":
        return self.context["case"]

    def get_rateable(self, assignment: Assignment) -> bool:
        return self._case().rateable

    def get_not_rateable_reason(self, assignment: Assignment) -> str:
        return self._case().reason

    @extend_schema_field(PanelSerializer(many=True))
    def get_panels(self, assignment: Assignment) -> list[dict[str, Any]]:
        return PanelSerializer(self._case().panels, many=True).data

    def get_read_only(self, assignment: Assignment) -> bool:
        return self._case().read_only

    def get_next_lesion_number(self, assignment: Assignment) -> int:
        return self._case().next_lesion_number


@dataclass(frozen=True)
class CaseView:
    """What the detail adds to an assignment, from the selectors and the caller's rights."""

    rateable: bool
    reason: str
    panels: list[Series]
    read_only: bool
    next_lesion_number: int


class LesionOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    voxels = serializers.IntegerField()
    volume_mm3 = serializers.FloatField()
    centroid_mm = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3)
    centroid_voxel = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3)
    anchor_mm = serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3)
    below_min_size = serializers.BooleanField()
    vote = serializers.CharField(allow_blank=True)
    confidence = serializers.IntegerField(allow_null=True)
    note = serializers.CharField(allow_blank=True)


class RevisionOutputSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    restored_from = serializers.IntegerField(source="restored_from_id", allow_null=True)
    lesions = serializers.SerializerMethodField()
    mask_url = serializers.SerializerMethodField()

    class Meta:
        model = Revision
        fields = [
            "id",
            "assignment",
            "number",
            "kind",
            "parent",
            "restored_from",
            "author",
            "sha256",
            "size_bytes",
            "active_seconds",
            "created_at",
            "lesions",
            "mask_url",
        ]
        read_only_fields = fields

    @extend_schema_field(LesionOutputSerializer(many=True))
    def get_lesions(self, revision: Revision) -> list[dict[str, Any]]:
        return list(revision.lesions or [])

    @extend_schema_field(OpenApiTypes.STR)
    def get_mask_url(self, revision: Revision) -> str:
        return reverse("api-revision-mask", kwargs={"pk": revision.pk})


class AssignmentEventOutputSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField(help_text="username, or the system's label")

    class Meta:
        model = AssignmentEvent
        fields = ["id", "action", "by", "reason", "created_at"]
        read_only_fields = fields

    def get_by(self, event: AssignmentEvent) -> str:
        return event.by.get_username() if event.by is not None else event.by_label


class ProgressRowOutputSerializer(serializers.Serializer):
    assignment = serializers.IntegerField(source="assignment.pk")
    session = serializers.IntegerField(source="assignment.session_id")
    subject_code = serializers.CharField(source="assignment.session.subject.code")
    session_label = serializers.CharField(source="assignment.session.label")
    rater = serializers.IntegerField(source="assignment.rater_id")
    rater_username = serializers.CharField(source="assignment.rater.username")
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    last_saved_at = serializers.DateTimeField(allow_null=True)
    lesion_count = serializers.IntegerField()
    active_seconds = serializers.FloatField()
    rateable = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
