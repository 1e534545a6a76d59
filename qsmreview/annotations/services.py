"""Assigning cases to raters and storing their annotations.

Every service takes the acting user (``by``) first and checks it with :mod:`qsmreview.access`:
admins assign, unassign and reopen (:func:`~qsmreview.access.require_manage`); only the
assignment's rater saves, restores and submits (:func:`~qsmreview.access.require_rate`: another
rater's case is :class:`~qsmreview.errors.NotFound`, an admin or PI is
:class:`~qsmreview.errors.Forbidden`); the system actor may do both. Each administrative or rater
action on an assignment leaves an :class:`~qsmreview.annotations.models.AssignmentEvent`.

Saving a revision follows the series' store-then-commit path
(:mod:`qsmreview.studies.services.series`): the mask is validated and its canonical file written
to storage first; the row is then created in one transaction that locks the assignment
(``select_for_update``) and numbers the revision. If that transaction fails, the file is deleted;
a file left by a crash between the two steps is removed by the orphan sweep
(:mod:`qsmreview.studies.services.orphans`).

A save must name the revision it was made from (``parent``). If that is not the assignment's
latest revision (a second tab saved in between), the save is kept as a *conflict* copy (never the
latest) and :class:`RevisionConflict` is raised after it is committed, with both ids, so the
rater can reload the latest or restore their copy.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from qsmreview.access import (
    Actor,
    SystemActor,
    require_manage,
    require_rate,
    user_or_none,
)
from qsmreview.annotations import masks
from qsmreview.annotations.models import (
    Assignment,
    AssignmentAction,
    AssignmentEvent,
    AssignmentStatus,
    Revision,
    RevisionKind,
)
from qsmreview.annotations.selectors import current_t2star_magnitude, next_lesion_number
from qsmreview.errors import Conflict, ValidationFailed
from qsmreview.lesions.components import LesionAnchorError, lesion_table
from qsmreview.reasons import reason_text
from qsmreview.studies.models import Membership, Role, Session, Study
from qsmreview.studies.storage import storage_delete_quietly

#: Active editing time counted per save at most (s): a tab left open overnight is not work.
MAX_ACTIVE_SECONDS_PER_SAVE = 3600.0

SUBMITTED_MESSAGE = "this case is submitted; ask an admin to reopen it"


class RevisionConflict(Conflict):
    """A save or restore named a parent that is no longer the latest revision.

    ``extra`` carries ``latest_revision`` (the id to reload) and ``conflict_revision`` (the id of
    the kept conflict copy, or None for a restore, which keeps none).
    """


# --- helpers ---------------------------------------------------------------------------------


def _event(assignment: Assignment, action: str, by: Actor, reason: str = "") -> AssignmentEvent:
    return AssignmentEvent.objects.create(
        assignment=assignment,
        action=action,
        by=user_or_none(by),
        by_label=by.get_username() if isinstance(by, SystemActor) else "",
        reason=reason,
    )


def _reason(reason: str | None, *, required: bool, what: str) -> str:
    return reason_text(reason, missing=f"a reason is required to {what}" if required else None)


def _locked(assignment: Assignment) -> Assignment:
    """The assignment's row, locked for this transaction (fresh from the database)."""
    # of=self: lock the assignment only, not the joined session, subject and study rows.
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("session__subject__study")
        .get(pk=assignment.pk)
    )


def _refresh_into(target: Assignment, source: Assignment) -> None:
    """Copy the locked row's state into the caller's instance (so it is not stale afterwards)."""
    for f in Assignment._meta.concrete_fields:
        setattr(target, f.attname, getattr(source, f.attname))


def _study_of(assignment: Assignment) -> Study:
    return assignment.session.subject.study


def _check_rater(study: Study, rater: Any) -> None:
    if not Membership.objects.filter(study=study, user=rater, role=Role.RATER).exists():
        name = rater.get_username() if hasattr(rater, "get_username") else str(rater)
        raise ValidationFailed(f"{name} is not a rater of {study.name}", field="raters")


def _clamp_seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"active_seconds must be a number, got {value!r}", field="active_seconds") from exc
    if not math.isfinite(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_ACTIVE_SECONDS_PER_SAVE)


# --- assignments -----------------------------------------------------------------------------


def _assign(*, by: Actor, session: Session, rater: Any) -> Assignment:
    """Create or re-activate one assignment (rights and membership already checked)."""
    existing = Assignment.objects.select_for_update().filter(session=session, rater=rater).first()
    if existing is not None:
        if existing.active:
            return existing
        existing.active = True
        existing.assigned_by = user_or_none(by)
        existing.save(update_fields=["active", "assigned_by"])
        _event(existing, AssignmentAction.ASSIGNED, by)
        return existing
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(session=session, rater=rater, assigned_by=user_or_none(by))
    except IntegrityError:  # assigned at the same moment by someone else: idempotent
        return Assignment.objects.get(session=session, rater=rater)
    _event(assignment, AssignmentAction.ASSIGNED, by)
    return assignment


def assignment_create(*, by: Actor, session: Session, rater: Any) -> Assignment:
    """Give ``session`` to ``rater`` (the study's admins).

    Idempotent: an active assignment is returned as it is; an unassigned one is re-activated
    with its revisions. Records an "assigned" event when something changed.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the session's study.
    ValidationFailed
        ``rater`` is not a rater of the study (field ``raters``).
    """
    study = session.subject.study
    require_manage(by, study, "assign cases")
    _check_rater(study, rater)
    with transaction.atomic():
        return _assign(by=by, session=session, rater=rater)


def assignments_create_bulk(
    *, by: Actor, study: Study, raters: Sequence[Any], sessions: Iterable[Session] | None = None
) -> list[Assignment]:
    """Give every session in ``sessions`` (None: every session of the study) to every rater.

    All or nothing, idempotent per pair (see :func:`assignment_create`). Returns the assignments
    ordered by subject code, session label and rater username.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the study.
    ValidationFailed
        No raters; a user who is not a rater of the study (``raters``); a session of another study
        (``sessions``).
    """
    require_manage(by, study, "assign cases")
    raters = list(raters)
    if not raters:
        raise ValidationFailed("name at least one rater", field="raters")
    for rater in raters:
        _check_rater(study, rater)
    if sessions is None:
        chosen = list(Session.objects.filter(subject__study=study).select_related("subject"))
    else:
        chosen = list(sessions)
        for session in chosen:
            if session.subject.study_id != study.pk:
                raise ValidationFailed(f"session {session.pk} is not in {study.name}", field="sessions")
    chosen.sort(key=lambda s: (s.subject.code, s.label, s.pk))
    raters.sort(key=lambda u: (u.get_username(), u.pk))
    with transaction.atomic():
        done: dict[tuple[int, int], Assignment] = {}
        for session in chosen:
            for rater in raters:
                if (session.pk, rater.pk) not in done:
                    done[(session.pk, rater.pk)] = _assign(by=by, session=session, rater=rater)
    return list(done.values())


def assignment_unassign(*, by: Actor, assignment: Assignment, force: bool = False, reason: str = "") -> None:
    """Take a case away from its rater (the study's admins); the revisions are kept.

    A case with saved work (any revision) is refused unless ``force`` is set with a reason.
    Unassigning an unassigned case does nothing.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the study.
    Conflict
        The rater has saved work and ``force`` is not set.
    ValidationFailed
        ``force`` with saved work but no reason (field ``reason``).
    """
    require_manage(by, _study_of(assignment), "unassign cases")
    text = _reason(reason, required=False, what="unassign a case")
    with transaction.atomic():
        row = _locked(assignment)
        if not row.active:
            _refresh_into(assignment, row)
            return
        saved = row.revisions.count()
        if saved and not force:
            raise Conflict(
                f"{row.rater.get_username()} has saved work on this case ({saved} revision"
                f"{'s' if saved != 1 else ''}); unassign with force and a reason to take it away "
                "(the revisions are kept)"
            )
        if saved and not text:
            raise ValidationFailed("a reason is required to unassign a case with saved work", field="reason")
        row.active = False
        row.save(update_fields=["active"])
        _event(row, AssignmentAction.UNASSIGNED, by, text)
        _refresh_into(assignment, row)


def assignment_reopen(*, by: Actor, assignment: Assignment, reason: str) -> Assignment:
    """Reopen a submitted case for its rater (the study's admins): status back to in progress.

    The submitted revision stays in the history (and in the "submitted" event); the assignment's
    ``submitted_revision`` and ``submitted_at`` are cleared until the next submission.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the study.
    ValidationFailed
        No reason (field ``reason``).
    Conflict
        The case is not submitted.
    """
    require_manage(by, _study_of(assignment), "reopen cases")
    text = _reason(reason, required=True, what="reopen a case")
    with transaction.atomic():
        row = _locked(assignment)
        if row.status != AssignmentStatus.SUBMITTED:
            raise Conflict(f"only a submitted case can be reopened; this one is {row.get_status_display().lower()}")
        row.status = AssignmentStatus.IN_PROGRESS
        row.submitted_revision = None
        row.submitted_at = None
        row.save(update_fields=["status", "submitted_revision", "submitted_at"])
        _event(row, AssignmentAction.REOPENED, by, text)
    _refresh_into(assignment, row)
    return assignment


def assignment_submit(*, by: Actor, assignment: Assignment, revision: Revision | None) -> Assignment:
    """Submit the case (its rater): the latest revision becomes the rater's answer and the case is
    locked until an admin reopens it.

    Raises
    ------
    NotFound / Forbidden
        ``by`` is not the assignment's rater (see :func:`~qsmreview.access.require_rate`).
    ValidationFailed
        Nothing saved yet ("save first"); ``revision`` missing or of another assignment
        (field ``revision``).
    Conflict
        Already submitted; ``revision`` is not the latest (``extra["latest_revision"]``).
    """
    require_rate(by, assignment)
    with transaction.atomic():
        row = _locked(assignment)
        require_rate(by, row)  # unassigned since the caller read it
        if row.status == AssignmentStatus.SUBMITTED:
            raise Conflict("this case is already submitted")
        if row.latest_revision_id is None:
            raise ValidationFailed("save first: there is no revision of this case to submit", field="revision")
        if revision is None:
            raise ValidationFailed("name the revision to submit (the latest)", field="revision")
        if revision.assignment_id != row.pk:
            raise ValidationFailed(f"revision {revision.pk} is not of this case", field="revision")
        if revision.pk != row.latest_revision_id:
            raise RevisionConflict(
                f"revision {revision.pk} is not the latest of this case (revision "
                f"{row.latest_revision_id} is): reload and submit the latest",
                extra={"latest_revision": row.latest_revision_id},
            )
        row.status = AssignmentStatus.SUBMITTED
        row.submitted_revision = revision
        row.submitted_at = timezone.now()
        row.save(update_fields=["status", "submitted_revision", "submitted_at"])
        _event(row, AssignmentAction.SUBMITTED, by, f"revision {revision.number}")
        # The last assigned rater's submission queues the consensus (sent when this commits).
        from qsmreview.consensus.services import consensus_after_submit

        consensus_after_submit(session=row.session)
    _refresh_into(assignment, row)
    return assignment


# --- revisions -------------------------------------------------------------------------------


def _check_parent(assignment: Assignment, parent: Revision | None) -> None:
    if parent is not None and parent.assignment_id != assignment.pk:
        raise ValidationFailed(f"revision {parent.pk} is not of this case", field="parent")


def _stale_message(latest_id: int | None, kept: Revision | None) -> str:
    where = f"revision {latest_id} is the latest" if latest_id else "it has no saved revision now"
    message = f"this case changed since you loaded it ({where})"
    if kept is not None:
        message += f"; your save is kept as revision {kept.pk} (a conflict copy): reload the latest, or restore your copy"
    else:
        message += ": reload it and try again"
    return message


def _lesions(lesions: Any) -> list[Mapping[str, Any]]:
    if lesions is None:
        return []
    if not isinstance(lesions, (list, tuple)):
        raise ValidationFailed("lesions must be a list of {number, anchor_mm, vote, confidence, note}", field="lesions")
    return list(lesions)


def revision_create(
    *,
    by: Actor,
    assignment: Assignment,
    mask_bytes: bytes,
    parent: Revision | None,
    lesions: Sequence[Mapping[str, Any]] | None,
    active_seconds: float = 0.0,
) -> Revision:
    """Save a new version of the rater's mask and votes.

    Parameters
    ----------
    by : the assignment's rater (or the system).
    assignment : the case.
    mask_bytes : the uploaded NIfTI (.nii or .nii.gz) on the session's T2* magnitude grid
        (:func:`qsmreview.annotations.masks.validate_mask`).
    parent : the revision the edit started from (None for the first save); must be the
        assignment's latest revision, else the save becomes a conflict copy.
    lesions : the client's lesions (number, anchor_mm, vote, confidence, note), matched to the
        mask's 6-connected components (:func:`qsmreview.lesions.components.lesion_table`).
    active_seconds : editing time since the last save (s), clamped to [0, 3600].

    Returns
    -------
    Revision
        kind ``save``, now the assignment's latest revision.

    Raises
    ------
    NotFound / Forbidden
        ``by`` is not the rater.
    Conflict
        The case is submitted ("ask an admin to reopen it"); nothing is stored.
    ValidationFailed
        The mask or the lesions are refused (fields ``mask``, ``lesions``, ``parent``); nothing
        is stored.
    RevisionConflict
        ``parent`` is not the latest revision: the save is stored as a ``conflict`` revision and
        this is raised after the commit, with ``latest_revision`` and ``conflict_revision``.
    """
    require_rate(by, assignment)
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise Conflict(SUBMITTED_MESSAGE)
    _check_parent(assignment, parent)
    anchors = _lesions(lesions)
    seconds = _clamp_seconds(active_seconds)
    reference = current_t2star_magnitude(assignment.session_id)
    if reference is None:
        raise ValidationFailed("this session has no T2* magnitude to draw on yet", field="mask")
    canonical = masks.validate_mask(mask_bytes, shape=reference.shape, affine=reference.affine)
    study = _study_of(assignment)
    try:
        table = lesion_table(
            canonical.voxels,
            canonical.affine,
            anchors=anchors,
            min_diameter_mm=float(study.min_lesion_diameter_mm),
            next_number=next_lesion_number(assignment),
        )
    except LesionAnchorError as exc:
        raise ValidationFailed(str(exc), field="lesions") from exc

    storage = Revision._meta.get_field("file").storage
    instance = Revision(assignment=assignment)
    stored_name: str | None = None
    try:
        instance.file.save(f"mask-{uuid.uuid4().hex[:16]}.nii.gz", ContentFile(canonical.content), save=False)
        stored_name = instance.file.name
        with transaction.atomic():
            row = _locked(assignment)
            require_rate(by, row)
            if row.status == AssignmentStatus.SUBMITTED:
                raise Conflict(SUBMITTED_MESSAGE)
            stale = (parent.pk if parent else None) != row.latest_revision_id
            instance.assignment = row
            instance.number = (row.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
            instance.kind = RevisionKind.CONFLICT if stale else RevisionKind.SAVE
            instance.parent = parent
            instance.size_bytes = canonical.size_bytes
            instance.sha256 = canonical.sha256
            instance.lesions = table
            instance.author = user_or_none(by)
            instance.active_seconds = seconds
            instance.save()
            if not stale:
                row.latest_revision = instance
                row.last_saved_at = instance.created_at
                row.lesion_count = len(table)
                row.active_seconds = float(row.active_seconds) + seconds
                row.status = AssignmentStatus.IN_PROGRESS
                row.save(update_fields=["latest_revision", "last_saved_at", "lesion_count", "active_seconds", "status"])
    except IntegrityError as exc:
        storage_delete_quietly(storage, stored_name)
        raise Conflict("another revision of this case was saved at the same time; retry") from exc
    except BaseException:
        storage_delete_quietly(storage, stored_name)
        raise
    _refresh_into(assignment, row)
    if stale:
        raise RevisionConflict(
            _stale_message(row.latest_revision_id, instance),
            extra={"latest_revision": row.latest_revision_id, "conflict_revision": instance.pk},
        )
    return instance


def revision_restore(*, by: Actor, revision: Revision, parent: Revision | None) -> Revision:
    """Make an earlier revision (or a conflict copy) the latest again, as a new revision.

    The new revision (kind ``restore``, ``restored_from`` = ``revision``) shares the stored file
    (same bytes and SHA-256) and the lesions of ``revision``.

    Raises
    ------
    NotFound / Forbidden
        ``by`` is not the rater.
    Conflict
        The case is submitted.
    RevisionConflict
        ``parent`` is not the latest revision (nothing is stored; ``conflict_revision`` is None).
    """
    assignment = revision.assignment
    require_rate(by, assignment)
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise Conflict(SUBMITTED_MESSAGE)
    _check_parent(assignment, parent)
    try:
        with transaction.atomic():
            row = _locked(assignment)
            require_rate(by, row)
            if row.status == AssignmentStatus.SUBMITTED:
                raise Conflict(SUBMITTED_MESSAGE)
            if (parent.pk if parent else None) != row.latest_revision_id:
                raise RevisionConflict(
                    _stale_message(row.latest_revision_id, None),
                    extra={"latest_revision": row.latest_revision_id, "conflict_revision": None},
                )
            restored = Revision(
                assignment=row,
                number=(row.revisions.aggregate(n=Max("number"))["n"] or 0) + 1,
                kind=RevisionKind.RESTORE,
                parent=parent,
                restored_from=revision,
                size_bytes=revision.size_bytes,
                sha256=revision.sha256,
                lesions=revision.lesions,
                author=user_or_none(by),
                active_seconds=0.0,
            )
            restored.file.name = revision.file.name  # immutable bytes: shared, not copied
            restored.save()
            row.latest_revision = restored
            row.last_saved_at = restored.created_at
            row.lesion_count = len(revision.lesions or [])
            row.status = AssignmentStatus.IN_PROGRESS
            row.save(update_fields=["latest_revision", "last_saved_at", "lesion_count", "status"])
    except IntegrityError as exc:
        raise Conflict("another revision of this case was saved at the same time; retry") from exc
    _refresh_into(assignment, row)
    return restored
