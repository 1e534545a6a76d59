"""Input and output serializers of the studies API.

Input serializers validate shapes and types only and never save: the views hand their
``validated_data`` to a service. Output serializers only render. A field an input does not know is
refused (a typo must not be silently ignored), with the domain error body.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qsmreview.api.ids import IdField
from qsmreview.access import provenance_visible_to, role_in_study
from qsmreview.errors import ValidationFailed
from qsmreview.studies.models import Membership, Role, Series, SeriesKind, Session, Study, Subject
from qsmreview.studies.services.studies import SESSION_FIELDS, STUDY_FIELDS, SUBJECT_FIELDS
from qsmreview.studies.validators import validate_field_strength_t, validate_single_line


class StrictInput(serializers.Serializer):
    """Refuses fields it does not declare."""

    unknown_message = "unknown field(s): {unknown}; allowed: {allowed}"

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise ValidationFailed(
                    self.unknown_message.format(
                        unknown=", ".join(unknown), allowed=", ".join(sorted(self.fields))
                    ),
                    field=unknown[0],
                )
        return super().to_internal_value(data)


# --- studies ---------------------------------------------------------------------------------


class StudyInputSerializer(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = sorted(STUDY_FIELDS)
        # uniqueness is the service's to check, with its own message
        extra_kwargs = {"name": {"validators": []}}


class StudyOutputSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField(
        help_text="the caller's role in the study: admin, rater or pi (a superuser counts as admin)"
    )

    class Meta:
        model = Study
        fields = [
            "id",
            "name",
            "description",
            "field_strength_t",
            "protocol",
            "created_at",
            "my_role",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_my_role(self, study: Study) -> str | None:
        role = role_in_study(self.context["request"].user, study)
        return role.value if role else None


class MembershipSetInputSerializer(StrictInput):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipOutputSerializer(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["user", "username", "role", "created_at"]


# --- subjects --------------------------------------------------------------------------------


class SubjectUpdateInputSerializer(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = sorted(SUBJECT_FIELDS)


class SubjectCreateInputSerializer(SubjectUpdateInputSerializer):
    study = IdField(help_text="id of the study")

    class Meta(SubjectUpdateInputSerializer.Meta):
        fields = ["study", *sorted(SUBJECT_FIELDS)]
        validators: list = []  # (study, code) uniqueness: the service says it in words


class SubjectOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ["id", "study", *sorted(SUBJECT_FIELDS), "created_at"]
        read_only_fields = fields  # no writable foreign key: it would offer every study


# --- sessions --------------------------------------------------------------------------------


class SessionUpdateInputSerializer(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = Session
        fields = sorted(SESSION_FIELDS)


class SessionCreateInputSerializer(SessionUpdateInputSerializer):
    subject = IdField(help_text="id of the subject")

    class Meta(SessionUpdateInputSerializer.Meta):
        fields = ["subject", *sorted(SESSION_FIELDS)]
        validators: list = []
        extra_kwargs = {"field_strength_t": {"required": False, "help_text": "default: the study's"}}


class SessionOutputSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="subject.study_id")
    subject_code = serializers.CharField(source="subject.code")

    class Meta:
        model = Session
        fields = [
            "id",
            "study",
            "subject",
            "subject_code",
            "label",
            "scan_date",
            "scanner",
            "field_strength_t",
            "created_at",
        ]
        read_only_fields = fields  # no writable foreign key: it would offer every subject


# --- series ----------------------------------------------------------------------------------


@extend_schema_field(serializers.ListField(child=serializers.FloatField(min_value=0)))
class EchoTimesField(serializers.Field):
    """Echo times in seconds: a JSON list, repeated form fields, or one comma-separated string."""

    default_error_messages = {
        "invalid": "echo_times_s must be numbers in seconds, e.g. 0.004,0.008; got {value!r}",
        "negative": "echo times must be positive seconds, got {value!r}",
    }

    def get_value(self, dictionary: Any) -> Any:
        if hasattr(dictionary, "getlist"):  # a form: one comma string or repeated fields
            values = dictionary.getlist(self.field_name)
            if not values:
                return serializers.empty
            return values if len(values) > 1 else values[0]
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> list[float]:
        items = data.split(",") if isinstance(data, str) else data
        if not isinstance(items, (list, tuple)):
            self.fail("invalid", value=data)
        try:
            values = [float(x) for x in items if not (isinstance(x, str) and not x.strip())]
        except (TypeError, ValueError):
            self.fail("invalid", value=data)
        if any(not v > 0 for v in values):
            self.fail("negative", value=data)
        return values

    def to_representation(self, value: list[float]) -> list[float]:
        return list(value)


class OptionalBooleanField(serializers.BooleanField):
    """A boolean that stays unset when a form omits it (DRF would read a missing box as False)."""

    default_empty_html = serializers.empty


class SeriesUploadInputSerializer(StrictInput):
    session = IdField(required=False, help_text="id of the session (or ?session= in the URL)")
    kind = serializers.ChoiceField(choices=SeriesKind.choices)
    label = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, validators=[validate_single_line]
    )
    echo_times_s = EchoTimesField(required=False, help_text="seconds; list or '0.004,0.008'")
    b0_t = serializers.FloatField(
        required=False,
        allow_null=True,
        validators=[validate_field_strength_t],
        help_text="tesla, 0.1-20; default: the session's field strength",
    )
    blinded = OptionalBooleanField(
        required=False, allow_null=True, default=None, help_text="default: by kind (QSM, lesion masks)"
    )
    file = serializers.FileField(help_text="NIfTI-1 volume, .nii or .nii.gz")


class SeriesUpdateInputSerializer(StrictInput):
    unknown_message = (
        "series are immutable: only blinded and is_current can change (got {unknown}); "
        "upload a new version instead"
    )

    blinded = serializers.BooleanField(required=False)
    is_current = serializers.BooleanField(required=False)


class SeriesOutputSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="session.subject.study_id")
    subject = serializers.IntegerField(source="session.subject_id")
    uploaded_by = serializers.CharField(source="uploaded_by.username", allow_null=True)
    derived_by = serializers.IntegerField(source="derived_by_id", allow_null=True)
    volume_url = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField(
        help_text="how the series was made; inputs the caller may not see read {\"hidden\": true}"
    )

    class Meta:
        model = Series
        fields = [
            "id",
            "study",
            "subject",
            "session",
            "kind",
            "label",
            "space",
            "shape",
            "voxel_size_mm",
            "affine",
            "dtype",
            "echo_times_s",
            "b0_t",
            "b0_direction",
            "blinded",
            "sha256",
            "size_bytes",
            "original_filename",
            "version",
            "is_current",
            "provenance",
            "created_at",
            "uploaded_by",
            "derived_by",
            "volume_url",
        ]
        read_only_fields = fields  # no writable foreign key: it would offer every session

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_provenance(self, series: Series) -> dict[str, Any]:
        request = self.context.get("request")
        return provenance_visible_to(request.user if request else None, series)

    @extend_schema_field(OpenApiTypes.URI)
    def get_volume_url(self, series: Series) -> str:
        url = reverse("api-series-volume", kwargs={"pk": series.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ErrorSerializer(serializers.Serializer):
    """The body of every refused request (:mod:`qsmreview.api.errors`)."""

    detail = serializers.CharField(help_text="what went wrong, in words a user can act on")
    code = serializers.CharField(
        help_text=(
            "invalid, not_found, forbidden, conflict, too_large; or DRF's own code where there is no "
            "domain equivalent (not_authenticated, authentication_failed, method_not_allowed, ...)"
        )
    )
    field = serializers.CharField(required=False, help_text="the input field at fault, if one")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="input checks only: every message per field ({field: [message, ...]})",
    )
