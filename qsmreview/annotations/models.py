"""Raters' work: which sessions each rater rates, and every saved version of their lesion mask.

An :class:`Assignment` gives one session to one rater. Each save is a :class:`Revision`: the mask as
compressed NIfTI on the session's T2* grid (uint8), the rater's per-lesion votes and the revision
it was made from. Revisions are immutable; a restore is a new revision, and a save made from a
stale parent (a second tab) is kept as a *conflict* copy that never becomes the latest. Every
administrative action on an assignment (assign, unassign, submit, reopen) is an
:class:`AssignmentEvent`, with who, when and why.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from qsmreview.studies.models import Session, Study

#: Every revision's mask is stored under this storage prefix (swept for orphans like series).
ANNOTATION_STORAGE_PREFIX = "annotations"


#: Ids of assignments and revisions are drawn at random below this bound (JavaScript's largest
#: exact integer), not counted up: a rater sees the ids of their own cases and saves, and a counter
#: would tell them how many other raters were assigned or saved in between (blinding).
PUBLIC_ID_BOUND = 2**53


def random_public_id() -> int:
    """A random id in [2**32, 2**53): never small, exact in JSON numbers and PostgreSQL bigint.

    Two of 10^5 rows collide with probability about 10^-6; the insert then fails on the primary
    key and the save is refused (nothing is overwritten), and a retry draws another id.
    """
    return 2**32 + secrets.randbelow(PUBLIC_ID_BOUND - 2**32)


class AssignmentStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"


class LesionClass(models.TextChoices):
    """A rater's class vote for one lesion."""

    CORTICAL = "cortical", "Cortical"
    WM = "wm", "White matter"
    MIXED = "mixed", "Mixed"


class Assignment(models.Model):
    """One session to rate, for one rater. ``active`` is False once unassigned (kept for the record)."""

    id = models.BigIntegerField(primary_key=True, default=random_public_id, editable=False)

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=12, choices=AssignmentStatus.choices, default=AssignmentStatus.NOT_STARTED
    )
    active = models.BooleanField(default=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: The rater's latest revision (never a conflict copy); a save must name it as its parent.
    latest_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_saved_at = models.DateTimeField(null=True, blank=True)
    #: Lesions in the latest revision.
    lesion_count = models.PositiveIntegerField(default=0)
    #: Active editing time reported by the workspace (idle time excluded), summed over revisions.
    active_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "rater"], name="one_assignment_per_rater_and_session")
        ]
        ordering = ["session", "rater"]

    def __str__(self) -> str:
        return f"{self.session} for {self.rater}"

    @property
    def study(self) -> Study:
        return self.session.subject.study


class RevisionKind(models.TextChoices):
    SAVE = "save", "Save"
    RESTORE = "restore", "Restore of an earlier revision"
    CONFLICT = "conflict", "Conflict copy (saved from a stale parent)"


def revision_upload_to(instance: "Revision", filename: str) -> str:
    a = instance.assignment
    return (
        f"{ANNOTATION_STORAGE_PREFIX}/{a.session.subject.study_id}/session-{a.session_id}/"
        f"assignment-{a.pk}/{filename}"
    )


class Revision(models.Model):
    """One saved version of a rater's mask and votes. Immutable once stored."""

    id = models.BigIntegerField(primary_key=True, default=random_public_id, editable=False)

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="revisions")
    #: 1, 2, 3, ... within the assignment, conflict copies included.
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=RevisionKind.choices, default=RevisionKind.SAVE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    restored_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    file = models.FileField(upload_to=revision_upload_to, max_length=500)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    #: One entry per connected component of the mask: number, voxel count, volume, centroid,
    #: below-minimum flag, and the rater's vote, confidence and note (see annotations.lesions).
    lesions = models.JSONField(default=list, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Active editing time the workspace reported for this save (seconds since its last save).
    active_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "number"], name="revision_number_unique")
        ]
        ordering = ["assignment", "-number"]

    def __str__(self) -> str:
        return f"{self.assignment} r{self.number}"


class AssignmentAction(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Unassigned"
    SUBMITTED = "submitted", "Submitted"
    REOPENED = "reopened", "Reopened"


class AssignmentEvent(models.Model):
    """The audit trail of an assignment: who did what, when, and why."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=12, choices=AssignmentAction.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Who acted when ``by`` is no user (the system, e.g. the demo loader).
    by_label = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assignment", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.assignment}: {self.action}"
