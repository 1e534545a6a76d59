"""Input and output serializers of the consensus API: inputs check shapes and types only (the
services decide), outputs only render."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from qsmreview.consensus.models import (
    Candidate,
    ConsensusDecision,
    ConsensusRun,
    ExclusionReason,
    LesionRow,
    LesionType,
    MeasurementSet,
)
from qsmreview.lesions.columns import CORE_COLUMNS
from qsmreview.studies.api.serializers import ErrorSerializer, StrictInput

__all__ = ["ErrorSerializer"]

_REASON = {"max_length": 2000, "help_text": "why (kept in the audit trail)"}


# --- inputs ----------------------------------------------------------------------------------


class RequestInputSerializer(StrictInput):
    """No fields: the run reads the session's current inputs."""


class ClassDecisionInputSerializer(StrictInput):
    lesion = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="consensus lesion id")
    lesion_type = serializers.ChoiceField(choices=LesionType.choices, help_text="the admin's class")
    reason = serializers.CharField(**_REASON)


class AdjudicationInputSerializer(StrictInput):
    candidate = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="candidate number")
    include = serializers.BooleanField(help_text="true: a lesion; false: not a lesion")
    reason = serializers.CharField(**_REASON)


class ExclusionInputSerializer(StrictInput):
    lesion = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="consensus lesion id")
    reason_code = serializers.ChoiceField(choices=ExclusionReason.choices, help_text="vessel, artifact, eroded or other")
    reason = serializers.CharField(**_REASON)


class VoxelRemovalInputSerializer(StrictInput):
    target = serializers.ChoiceField(choices=[("lesion", "lesion"), ("reference", "reference ROIs")])
    lesion = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True, default=None,
        help_text="the lesion (target lesion)",
    )
    voxels = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=2**16), min_length=3, max_length=3),
        min_length=1,
        max_length=100_000,
        help_text="voxel indices [i, j, k] on the T2* grid",
    )
    reason = serializers.CharField(**_REASON)


class VoxelEditInputSerializer(StrictInput):
    operation = serializers.ChoiceField(choices=[("remove", "remove"), ("add", "add (reference ROIs only)")])
    target = serializers.ChoiceField(choices=[("lesion", "lesion"), ("reference", "reference ROIs")])
    lesion = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True, default=None,
        help_text="the lesion (remove from a lesion)",
    )
    roi = serializers.IntegerField(
        min_value=11, max_value=2**31 - 1, required=False, allow_null=True, default=None,
        help_text="the reference ROI id, 10 x lesion + 1 (WM) or + 2 (cortical) (add)",
    )
    mask = serializers.CharField(
        max_length=8 * 1024 * 1024, trim_whitespace=True,
        help_text="base64 of a NIfTI-1 mask (.nii or .nii.gz bytes) on the T2* grid: shape and affine of the label maps, 0/1",
    )
    reason = serializers.CharField(**_REASON)


class VesselApplicationInputSerializer(StrictInput):
    lesion = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="consensus lesion id")
    target = serializers.ChoiceField(
        choices=[("lesion", "lesion"), ("reference", "reference ROIs")],
        help_text="where the proposed vessel voxels are removed: the lesion or its reference ROIs",
    )
    reason = serializers.CharField(**_REASON)


class SettingsInputSerializer(StrictInput):
    values = serializers.DictField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text="settings to change, by name (see the GET answer); majority may be null",
    )
    reason = serializers.CharField(**_REASON)


class RevertInputSerializer(StrictInput):
    reason = serializers.CharField(**_REASON)


# --- outputs ---------------------------------------------------------------------------------


class SettingOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField(help_text="in effect (null: majority of the assigned raters)")
    default = serializers.JSONField(help_text="the reference study's default")
    unit = serializers.CharField()
    meaning = serializers.CharField()


class SettingsVersionOutputSerializer(serializers.Serializer):
    values = serializers.JSONField()
    reason = serializers.CharField()
    by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_by(self, version: Any) -> str:
        return version.by.get_username() if version.by is not None else ""


class SettingsOutputSerializer(serializers.Serializer):
    settings = SettingOutputSerializer(many=True)
    history = SettingsVersionOutputSerializer(many=True, help_text="every change, newest first")


class LesionRowOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = LesionRow
        # the core's columns, with the rule's class beside the class in effect, then QC
        fields = [*CORE_COLUMNS[:3], "rule_type", *CORE_COLUMNS[3:], "excluded", "exclusion_reason", "extras"]


class MeasurementSetOutputSerializer(serializers.ModelSerializer):
    decision = serializers.IntegerField(source="decision_id", allow_null=True)

    class Meta:
        model = MeasurementSet
        fields = [
            "number",
            "current",
            "decision",
            "decisions_applied",
            "lesion_labels_sha256",
            "reference_labels_sha256",
            "created_at",
        ]


class RunOutputSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="session.subject.study_id")
    session = serializers.IntegerField(source="session_id")
    subject_code = serializers.CharField(source="session.subject.code")
    job = serializers.IntegerField(source="job_id", allow_null=True)
    tissue_series = serializers.IntegerField(source="tissue_series_id", allow_null=True)
    qsm_series = serializers.IntegerField(source="qsm_series_id", allow_null=True)
    brain_mask_series = serializers.IntegerField(source="brain_mask_series_id", allow_null=True)
    measurements = serializers.SerializerMethodField()

    class Meta:
        model = ConsensusRun
        fields = [
            "id",
            "study",
            "session",
            "subject_code",
            "status",
            "current",
            "trigger",
            "job",
            "revisions",
            "tissue_series",
            "tissue_version",
            "tissue_sha256",
            "qsm_series",
            "qsm_version",
            "qsm_sha256",
            "brain_mask_series",
            "brain_mask_sha256",
            "params",
            "code_version",
            "error",
            "created_at",
            "measurements",
        ]

    def get_measurements(self, run: ConsensusRun) -> dict[str, Any] | None:
        """The current measurement set (its number, the decisions in it, the label maps' checksums)."""
        current = run.measurement_sets.filter(current=True).first()
        return MeasurementSetOutputSerializer(current).data if current else None


class CandidateOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = ["number", "status", "raters", "lesion", "n_voxels", "data"]


class DecisionOutputSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id")
    by = serializers.CharField(source="who")
    reverts = serializers.IntegerField(source="reverts_id", allow_null=True)
    reverted = serializers.SerializerMethodField()

    class Meta:
        model = ConsensusDecision
        fields = ["id", "run", "kind", "lesion", "candidate", "value", "reason", "reverts", "reverted", "by", "created_at"]

    def get_reverted(self, decision: ConsensusDecision) -> bool:
        """Whether a later decision undid this one."""
        return ConsensusDecision.objects.filter(reverts=decision).exists()


class QcPortionOutputSerializer(serializers.Serializer):
    portion = serializers.CharField()
    roi = serializers.IntegerField(help_text="its reference ROI id in the reference label map")
    n_voxels = serializers.IntegerField()
    relative_susceptibility_ppm = serializers.FloatField(allow_null=True)
    reference_n_voxels = serializers.IntegerField(allow_null=True)
    reference_flag = serializers.CharField(allow_null=True)


class QcLesionOutputSerializer(serializers.Serializer):
    lesion = serializers.IntegerField()
    lesion_type = serializers.CharField()
    rule_type = serializers.CharField()
    n_voxels = serializers.IntegerField()
    excluded = serializers.BooleanField()
    exclusion_reason = serializers.CharField()
    exclusion_decision = serializers.IntegerField(allow_null=True, help_text="the exclusion in effect (revert it to restore)")
    qsm_mask_cut_fraction = serializers.FloatField(allow_null=True, help_text="share of its voxels outside the eroded QSM mask")
    vessel_voxels_lesion = serializers.IntegerField(allow_null=True, help_text="proposed vessel voxels in the lesion (null: no proposals)")
    vessel_voxels_reference = serializers.IntegerField(allow_null=True, help_text="proposed vessel voxels in its reference ROIs")
    centre_vox = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text="the lesion voxel nearest its centroid [i, j, k]")
    centre_mm = serializers.ListField(child=serializers.FloatField(), allow_null=True, help_text="the same voxel in scanner mm")
    portions = QcPortionOutputSerializer(many=True)


class QcOutputSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    set = serializers.IntegerField(help_text="the measurement set's number")
    current = serializers.BooleanField()
    vessel_proposals = serializers.BooleanField(help_text="whether the run stored vessel proposals")
    lesions = QcLesionOutputSerializer(many=True)


class AgreementOutputSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="pk")
    session = serializers.IntegerField(source="session_id")
    subject_code = serializers.CharField(source="session.subject.code")
    raters = serializers.ListField(source="rater_names", child=serializers.CharField())
    agreement = serializers.JSONField(help_text="F1 per rater pair and vs consensus, Dice, Fleiss' kappa, parameters")
