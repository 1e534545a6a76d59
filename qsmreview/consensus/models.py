"""Consensus results: immutable, with the exact inputs they were made from.

A :class:`ConsensusRun` is one computation of a session's consensus lesions from the raters'
submitted revisions, the session's tissue labels and (when there is one) its QSM. It records the
revisions (ids and SHA-256), the series (id, version, SHA-256), the parameters and the code
version. A recomputation is a new run, marked current; older runs are kept.

The run's measurements live in :class:`MeasurementSet` rows: set 1 is the pipeline's; every QC
action or admin decision (:class:`ConsensusDecision`, audited and reversible) produces a new set
computed from the run's label maps with every effective decision applied, and the older sets are
kept. Each set has its label maps (consensus lesions and reference ROIs, NIfTI on the T2* grid,
stored through the store-then-commit path of series and covered by the orphan sweep) and its
lesion table (:class:`LesionRow`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from qsmreview.studies.models import Series, Session, Study

#: Every consensus label map is stored under this storage prefix (swept for orphans).
CONSENSUS_STORAGE_PREFIX = "consensus"


class RunStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


def run_file_upload_to(instance: "ConsensusRun", filename: str) -> str:
    return f"{CONSENSUS_STORAGE_PREFIX}/{instance.session.subject.study_id}/session-{instance.session_id}/run-{instance.pk}/{filename}"


class ConsensusRun(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="consensus_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices)
    #: The job that computed it (None when run synchronously, e.g. by the demo loader).
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Why it was run: "all raters submitted", "requested", "input changed", "demo", ...
    trigger = models.CharField(max_length=200, blank=True)
    #: The submitted revisions used: [{"revision", "assignment", "rater", "sha256"}], by rater.
    revisions = models.JSONField(default=list)
    tissue_series = models.ForeignKey(Series, null=True, on_delete=models.SET_NULL, related_name="+")
    tissue_version = models.PositiveIntegerField(null=True)
    tissue_sha256 = models.CharField(max_length=64, blank=True)
    qsm_series = models.ForeignKey(Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    qsm_version = models.PositiveIntegerField(null=True, blank=True)
    qsm_sha256 = models.CharField(max_length=64, blank=True)
    brain_mask_series = models.ForeignKey(
        Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    brain_mask_sha256 = models.CharField(max_length=64, blank=True)
    #: ConsensusParams.as_dict() plus the QSM mask erosion (mm).
    params = models.JSONField(default=dict)
    #: Library versions (qsmreview, numpy, python) the run was computed with.
    code_version = models.JSONField(default=dict)
    #: Agreement between raters and with the consensus (F1, Dice, Fleiss' kappa, parameters).
    agreement = models.JSONField(default=dict, blank=True)
    #: The pipeline's summary, timings and vessel proposals.
    summary = models.JSONField(default=dict, blank=True)
    #: Voxels proposed as vessel near the lesions (uint8 0/1 NIfTI on the T2* grid; a proposal,
    #: never applied); empty when the run had no QSM. Stored like the label maps.
    vessel_proposals = models.FileField(upload_to=run_file_upload_to, max_length=500, blank=True)
    vessel_proposals_sha256 = models.CharField(max_length=64, blank=True)
    vessel_proposals_size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    current = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=Q(current=True), name="one_current_consensus_run_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"consensus run {self.pk} of {self.session} ({self.status})"

    @property
    def study(self) -> Study:
        return self.session.subject.study

    @property
    def rater_names(self) -> list[str]:
        return [r.get("rater", "") for r in self.revisions]


class CandidateStatus(models.TextChoices):
    LESION = "lesion", "Lesion (majority)"
    REJECTED = "rejected", "Rejected (minority)"
    TOO_SMALL = "too_small", "Too small"
    ADJUDICATION = "adjudication", "Needs adjudication"


class Candidate(models.Model):
    """One candidate lesion of a run (any rater's mark), with the rule's verdict."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="candidates")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=CandidateStatus.choices)
    raters = models.JSONField(default=list)
    #: The consensus lesion id it became (None when it did not).
    lesion = models.PositiveIntegerField(null=True, blank=True)
    n_voxels = models.PositiveIntegerField(default=0)
    #: Everything else the pipeline says about it (votes, centroid, reason, ...).
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="candidate_number_unique")]

    def __str__(self) -> str:
        return f"candidate {self.number} of run {self.run_id} ({self.status})"


def label_map_upload_to(instance: "MeasurementSet", filename: str) -> str:
    run = instance.run
    return f"{CONSENSUS_STORAGE_PREFIX}/{run.session.subject.study_id}/session-{run.session_id}/run-{run.pk}/{filename}"


class MeasurementSet(models.Model):
    """The label maps and lesion table of a run after a given list of decisions. Immutable."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="measurement_sets")
    #: 1 for the pipeline's, 2, 3, ... for each QC edit or decision.
    number = models.PositiveIntegerField()
    current = models.BooleanField(default=True)
    #: The decision that produced this set (None for set 1).
    decision = models.ForeignKey(
        "ConsensusDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Ids of the decisions in effect when it was computed.
    decisions_applied = models.JSONField(default=list, blank=True)
    lesion_labels = models.FileField(upload_to=label_map_upload_to, max_length=500)
    lesion_labels_sha256 = models.CharField(max_length=64)
    lesion_labels_size = models.BigIntegerField()
    reference_labels = models.FileField(upload_to=label_map_upload_to, max_length=500)
    reference_labels_sha256 = models.CharField(max_length=64)
    reference_labels_size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="measurement_set_number_unique"),
            models.UniqueConstraint(
                fields=["run"], condition=Q(current=True), name="one_current_measurement_set_per_run"
            ),
        ]

    def __str__(self) -> str:
        return f"measurements {self.number} of run {self.run_id}"


class LesionType(models.TextChoices):
    WM = "wm", "White matter"
    CORTICAL = "cortical", "Cortical"
    MIXED = "mixed", "Mixed"


class Portion(models.TextChoices):
    WM = "wm", "WM portion"
    CORTICAL = "cortical", "Cortical portion"


class MeasuredLesion(models.Model):
    """The columns of a measured lesion or portion (the core's lesion table) shared by the
    consensus rows and the raters' own rows."""

    subject = models.CharField(max_length=64)
    lesion = models.PositiveIntegerField()
    #: The class in effect (the admin's decision when there is one, else the rule's).
    lesion_type = models.CharField(max_length=10, choices=LesionType.choices)
    portion = models.CharField(max_length=10, choices=Portion.choices)
    n_voxels = models.PositiveIntegerField()
    volume_mm3 = models.FloatField()
    cortical_fraction = models.FloatField(null=True, blank=True)
    lesion_mean_ppm = models.FloatField(null=True, blank=True)
    lesion_sd_ppm = models.FloatField(null=True, blank=True)
    reference_mean_ppm = models.FloatField(null=True, blank=True)
    reference_sd_ppm = models.FloatField(null=True, blank=True)
    reference_n_voxels = models.PositiveIntegerField(null=True, blank=True)
    relative_susceptibility_ppm = models.FloatField(null=True, blank=True)
    #: Other columns of the pipeline (vote_majority, class_disagreement, reference_flag, ...).
    extras = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True


class LesionRow(MeasuredLesion):
    """One row of the lesion table: a lesion, or one portion of a mixed lesion."""

    measurement_set = models.ForeignKey(MeasurementSet, on_delete=models.CASCADE, related_name="rows")
    #: The rule's class (kept when an admin decided otherwise).
    rule_type = models.CharField(max_length=10, choices=LesionType.choices, blank=True)
    raters = models.JSONField(default=list)
    #: Excluded by QC (kept in the table, left out of statistics), with the reason code.
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["measurement_set", "lesion", "portion"]
        constraints = [
            models.UniqueConstraint(
                fields=["measurement_set", "lesion", "portion"], name="one_row_per_lesion_portion"
            )
        ]

    def __str__(self) -> str:
        return f"lesion {self.lesion} {self.portion} of {self.measurement_set}"


class RaterLesionRow(MeasuredLesion):
    """One rater's own lesion (or portion), measured by a consensus run as its consensus lesions
    are (:func:`qsmreview.lesions.pipeline.rater_lesion_tables`): the table of a single reader.
    Immutable; QC decisions concern the consensus, not these rows. ``extras["candidate"]`` names
    the run's candidate that holds the lesion."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="rater_rows")
    #: The rater's username, as in the run's ``revisions``.
    rater = models.CharField(max_length=150)

    class Meta:
        ordering = ["run", "rater", "lesion", "portion"]
        constraints = [
            models.UniqueConstraint(fields=["run", "rater", "lesion", "portion"], name="one_row_per_rater_lesion_portion")
        ]
        indexes = [models.Index(fields=["rater", "run"], name="rater_rows_by_rater")]

    def __str__(self) -> str:
        return f"{self.rater}'s lesion {self.lesion} {self.portion} of run {self.run_id}"


class DecisionKind(models.TextChoices):
    CLASS = "class", "Class"
    ADJUDICATE = "adjudicate", "Adjudicate"
    EXCLUDE = "exclude", "Exclude"
    REMOVE_VOXELS = "remove_voxels", "Remove voxels"
    ADD_VOXELS = "add_voxels", "Add voxels"
    REVERT = "revert", "Revert"


class ExclusionReason(models.TextChoices):
    VESSEL = "vessel", "Vessel"
    ARTIFACT = "artifact", "Artifact"
    ERODED = "eroded", "Eroded away (outside the QSM mask)"
    OTHER = "other", "Other"


class ConsensusDecision(models.Model):
    """An admin's decision or QC action on a run: who, when, what and why. Never changed; undone
    by a later ``revert`` decision that names it."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=16, choices=DecisionKind.choices)
    #: The consensus lesion it concerns (class, exclude, remove voxels from a lesion).
    lesion = models.PositiveIntegerField(null=True, blank=True)
    #: The candidate it concerns (adjudication).
    candidate = models.PositiveIntegerField(null=True, blank=True)
    #: What was decided: {"class": "wm"}, {"include": true}, {"reason": "vessel"},
    #: {"target": "lesion"|"reference", "voxels": [[i, j, k], ...]}; add_voxels (reference ROIs
    #: only): {"target": "reference", "roi": 11, "voxels": [[i, j, k], ...]}.
    value = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    #: For ``revert``: the decision it undoes.
    reverts = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reverted_by"
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} on run {self.run_id}"

    @property
    def who(self) -> str:
        return self.by.get_username() if self.by is not None else self.by_label


class ConsensusSettings(models.Model):
    """One version of a study's consensus settings (thresholds of the rules), never changed: a
    change is a new row, the newest is in effect, older ones are the audit trail. ``values``
    holds every tunable setting of :class:`qsmreview.lesions.params.ConsensusParams`."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="consensus_settings")
    values = models.JSONField()
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "-created_at", "-pk"]

    def __str__(self) -> str:
        return f"consensus settings of {self.study_id} ({self.created_at:%Y-%m-%d %H:%M})"
