"""Consensus runs and their decisions in Django's admin: read-only, study-scoped.

Runs are computed by the ``consensus`` job and decisions are made on the consensus and QC pages
(or the API), which call the services (rights, audit trail, new measurement sets); here they are
only read.
"""

from __future__ import annotations

from django.contrib import admin

from qsmreview.annotations.admin import ReadOnlyStudyScopedAdmin
from qsmreview.consensus.models import Candidate, ConsensusDecision, ConsensusRun, ConsensusSettings, MeasurementSet
from qsmreview.studies.admin import ReadOnlyInline, scoped_filter


class DecisionInline(ReadOnlyInline):
    model = ConsensusDecision
    fk_name = "run"
    fields = ("created_at", "kind", "lesion", "candidate", "value", "reason", "by", "by_label", "reverts")
    readonly_fields = fields


class MeasurementSetInline(ReadOnlyInline):
    model = MeasurementSet
    fields = ("number", "current", "decision", "lesion_labels_sha256", "reference_labels_sha256", "created_at")
    readonly_fields = fields


@admin.register(ConsensusRun)
class ConsensusRunAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "session__subject__study"
    list_display = ("id", "session", "status", "current", "trigger", "created_at")
    list_filter = ("status", "current", scoped_filter("session__subject__study"))
    search_fields = ("session__subject__code", "trigger")
    list_select_related = ("session__subject__study",)
    inlines = [MeasurementSetInline, DecisionInline]


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "run__session__subject__study"
    list_display = ("id", "run", "number", "status", "n_voxels", "lesion")
    list_filter = ("status", scoped_filter("run__session__subject__study"))
    list_select_related = ("run__session__subject__study",)


@admin.register(ConsensusDecision)
class ConsensusDecisionAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "run__session__subject__study"
    list_display = ("created_at", "run", "kind", "lesion", "candidate", "by", "by_label", "reason")
    list_filter = ("kind", scoped_filter("run__session__subject__study"))
    search_fields = ("run__session__subject__code", "reason")
    list_select_related = ("run__session__subject__study", "by")


@admin.register(ConsensusSettings)
class ConsensusSettingsAdmin(ReadOnlyStudyScopedAdmin):
    study_path = "study"
    list_display = ("created_at", "study", "by", "reason")
    list_filter = (scoped_filter("study"),)
    list_select_related = ("study", "by")
