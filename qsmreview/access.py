"""Who may see what, and who may change what: the one place that decides.

Every view, page, API route, admin page, management command and export reads through the
``*_visible_to`` querysets here, and every write service checks its acting user with the
``require_*`` functions here. Nothing else decides access.

Read rules (blinding is security):

- a superuser sees everything;
- a study's admin and PI see everything in that study, blinded series included;
- a rater sees the study, only the sessions **assigned** to them (and those sessions' subjects),
  only the series of those sessions that are not blinded (never QSM or lesion masks by default),
  only their own assignments and revisions, no jobs (their outputs and parameters would
  unblind) and no consensus results (they show every rater's marks); another rater's work does
  not exist for them (404, like anything else they may not see);
- anyone else sees nothing of the study: it answers 404, as if it did not exist.

Write rules: a study's admins change it (members, subjects, sessions, series, jobs); staff and
superusers create studies; the application itself acts as a :class:`SystemActor` (a job's runner
storing its output, an operator's management command), named for the record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from qsmreview.errors import Forbidden, NotFound
from qsmreview.studies.models import Membership, Role, Series, Session, Study, Subject


@dataclass(frozen=True)
class SystemActor:
    """The application acting on its own behalf, with every right; ``reason`` names it.

    Used where no person acts at that moment: a job's runner storing its outputs (its submitter's
    rights were checked at submission), a management command run by an operator with shell access
    to the server. It is never a user: rows record no user for it (:func:`user_or_none`).
    """

    reason: str
    is_authenticated: bool = True
    is_superuser: bool = True
    is_staff: bool = True
    is_active: bool = True
    pk: None = None

    def get_username(self) -> str:
        return f"system ({self.reason})"

    def __str__(self) -> str:
        return self.get_username()


def system(reason: str) -> SystemActor:
    """The system actor for ``reason`` (e.g. ``"job #12"``, ``"manage.py import_bids"``)."""
    return SystemActor(reason=reason)


AnyUser = AbstractBaseUser | AnonymousUser
#: Who performs a write: a user, or the application itself.
Actor = AbstractBaseUser | AnonymousUser | SystemActor


def user_or_none(actor: Any) -> AbstractBaseUser | None:
    """The user to record on a row for ``actor`` (None for the system or nobody)."""
    if actor is None or isinstance(actor, SystemActor) or not actor.is_authenticated:
        return None
    return actor


def _is_super(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_superuser)


def role_in_study(user: Actor, study: Study | int) -> Role | None:
    """The user's role in the study, or None. A superuser (and the system) is admin everywhere."""
    if user is None or not user.is_authenticated:
        return None
    if _is_super(user):
        return Role.ADMIN
    study_id = study if isinstance(study, int) else study.pk
    role = (
        Membership.objects.filter(user=user, study_id=study_id).values_list("role", flat=True).first()
    )
    return Role(role) if role else None


def can_create_study(user: Actor) -> bool:
    return bool(user is not None and user.is_authenticated and (user.is_superuser or user.is_staff))


def can_manage_study(user: Actor, study: Study | int) -> bool:
    """Admins of the study may upload, edit and run jobs."""
    return role_in_study(user, study) == Role.ADMIN


def can_see_unblinded(user: Actor, study: Study | int) -> bool:
    return role_in_study(user, study) in (Role.ADMIN, Role.PI)


# --- write checks: every write service calls one of these with its acting user ------------------


def require_manage(by: Actor, study: Study | int, action: str) -> None:
    """Raise :class:`~qsmreview.errors.Forbidden` unless ``by`` administers ``study``.

    ``action`` completes "only the study's admins can ..." (e.g. "upload series").
    """
    if not can_manage_study(by, study):
        raise Forbidden(f"only the study's admins can {action}")


def require_create_study(by: Actor) -> None:
    if not can_create_study(by):
        raise Forbidden("only staff can create studies")


def require_rate(by: Actor, assignment: Any) -> None:
    """Raise unless ``by`` is the assignment's rater: :class:`NotFound` when ``by`` may not even
    see it (another rater's case is absent, not forbidden), :class:`Forbidden` otherwise (an admin
    or PI, who read but never draw); the system may act (the demo loader)."""
    if isinstance(by, SystemActor) or can_rate(by, assignment):
        return
    if not assignments_visible_to(by).filter(pk=assignment.pk).exists():
        raise NotFound("no such assignment")
    raise Forbidden("only the assigned rater can change this annotation")


def require_superuser(by: Actor, action: str) -> None:
    """For writes that belong to no study (e.g. a job with no study): superusers and the system."""
    if not _is_super(by):
        raise Forbidden(f"only superusers can {action}")


def _study_ids(user: AnyUser, roles: tuple[Role, ...] | None = None) -> QuerySet:
    qs = Membership.objects.filter(user=user)
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return qs.values("study_id")


def studies_visible_to(user: AnyUser) -> QuerySet[Study]:
    if not user.is_authenticated:
        return Study.objects.none()
    if _is_super(user):
        return Study.objects.all()
    return Study.objects.filter(pk__in=_study_ids(user))


def studies_managed_by(user: AnyUser) -> QuerySet[Study]:
    if _is_super(user):
        return Study.objects.all()
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(pk__in=_study_ids(user, (Role.ADMIN,)))


def _assigned_session_ids(user: AnyUser) -> QuerySet:
    """Sessions actively assigned to ``user`` as a rater (in studies where they are a rater)."""
    from qsmreview.annotations.models import Assignment

    return Assignment.objects.filter(
        rater=user,
        active=True,
        session__subject__study_id__in=_study_ids(user, (Role.RATER,)),
    ).values("session_id")


def subjects_visible_to(user: AnyUser) -> QuerySet[Subject]:
    """Every subject of the user's admin/PI studies; for a rater, those of assigned sessions."""
    if not user.is_authenticated:
        return Subject.objects.none()
    if _is_super(user):
        return Subject.objects.all()
    return Subject.objects.filter(
        Q(study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))
        | Q(sessions__in=_assigned_session_ids(user))
    ).distinct()


def sessions_visible_to(user: AnyUser) -> QuerySet[Session]:
    """Every session of the user's admin/PI studies; for a rater, only the assigned ones."""
    if not user.is_authenticated:
        return Session.objects.none()
    if _is_super(user):
        return Session.objects.all()
    return Session.objects.filter(
        Q(subject__study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))
        | Q(pk__in=_assigned_session_ids(user))
    )


def series_visible_to(user: AnyUser) -> QuerySet[Series]:
    """Series the user may list and download.

    Admins and PIs: every series of their studies, blinded ones included. Raters: the series of
    their assigned sessions that are not blinded.
    """
    if not user.is_authenticated:
        return Series.objects.none()
    if _is_super(user):
        return Series.objects.all()
    return Series.objects.filter(
        Q(session__subject__study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))
        | Q(session_id__in=_assigned_session_ids(user), blinded=False)
    )


def assignments_visible_to(user: AnyUser) -> QuerySet:
    """Admins and PIs: every assignment of their studies (unassigned ones too). Raters: their own
    active assignments; another rater's do not exist for them."""
    from qsmreview.annotations.models import Assignment

    if not user.is_authenticated:
        return Assignment.objects.none()
    if _is_super(user):
        return Assignment.objects.all()
    return Assignment.objects.filter(
        Q(session__subject__study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))
        | Q(rater=user, active=True, session__subject__study_id__in=_study_ids(user, (Role.RATER,)))
    )


def revisions_visible_to(user: AnyUser) -> QuerySet:
    """Revisions of the assignments the user sees (:func:`assignments_visible_to`)."""
    from qsmreview.annotations.models import Revision

    return Revision.objects.filter(assignment__in=assignments_visible_to(user))


def can_rate(user: Actor, assignment: Any) -> bool:
    """May ``user`` save, restore and submit in this assignment? Only its rater, while assigned."""
    return bool(
        user is not None
        and user.is_authenticated
        and not isinstance(user, SystemActor)
        and assignment.active
        and assignment.rater_id == user.pk
        and role_in_study(user, assignment.session.subject.study_id) == Role.RATER
    )


def jobs_visible_to(user: AnyUser) -> QuerySet:
    """Jobs of the studies where the user is admin or PI (raters see no jobs)."""
    from qsmreview.jobs.models import Job

    if not user.is_authenticated:
        return Job.objects.none()
    if _is_super(user):
        return Job.objects.all()
    return Job.objects.filter(study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))



def sessions_with_consensus_visible_to(user: AnyUser) -> QuerySet[Session]:
    """Sessions whose consensus, measurements, QC and agreement the user may read: every session
    of the studies where they are admin or PI (superusers: all). Raters never see consensus (it
    shows other raters' marks): for them it does not exist (404), even on their assigned sessions."""
    if not user.is_authenticated:
        return Session.objects.none()
    if _is_super(user):
        return Session.objects.all()
    return Session.objects.filter(subject__study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))


def consensus_runs_visible_to(user: AnyUser) -> QuerySet:
    """Consensus runs (with their candidates, measurements, decisions and label maps) the user may
    read: those of :func:`sessions_with_consensus_visible_to`. Writes need an admin on top
    (:func:`require_manage`)."""
    from qsmreview.consensus.models import ConsensusRun

    if not user.is_authenticated:
        return ConsensusRun.objects.none()
    if _is_super(user):
        return ConsensusRun.objects.all()
    return ConsensusRun.objects.filter(session__subject__study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))


def consensus_decisions_visible_to(user: AnyUser) -> QuerySet:
    """Decisions and QC actions of the consensus runs the user may read."""
    from qsmreview.consensus.models import ConsensusDecision

    return ConsensusDecision.objects.filter(run__in=consensus_runs_visible_to(user))

def studies_with_statistics_visible_to(user: AnyUser) -> QuerySet[Study]:
    """Studies whose statistics, lesion and patient tables and PI pages the user may read: those
    where they are admin or PI (superusers: all). Raters never see them (the tables pool every
    rater's consensus): for them, as for outsiders, the statistics do not exist (404). Writes
    (importing a lesion table) need an admin on top (:func:`require_manage`)."""
    if not user.is_authenticated:
        return Study.objects.none()
    if _is_super(user):
        return Study.objects.all()
    return Study.objects.filter(pk__in=_study_ids(user, (Role.ADMIN, Role.PI)))


# --- provenance ---------------------------------------------------------------------------------

#: What replaces a provenance input the user may not see: no id, kind, version or checksum.
HIDDEN_INPUT: dict[str, Any] = {"hidden": True}


def _input_id(item: Any) -> int | None:
    value = item.get("series") if isinstance(item, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 else None


def provenance_visible_to(user: AnyUser | None, series: Series) -> dict[str, Any]:
    """``series.provenance`` with every input the user may not see replaced by :data:`HIDDEN_INPUT`.

    A derived series records its inputs (``provenance["inputs"]``: id, kind, label, version,
    sha256). A series a rater may see (a coregistered FLAIR) can be derived from one they may not
    (a QSM, a lesion mask): that input's id, version and checksum would tell them what blinding
    hides, so inputs pass the same rule as series (:func:`series_visible_to`). An input that
    cannot be checked (no series id, a deleted series) counts as not visible. The stored
    provenance is not modified. Every serializer, page and export that shows provenance uses this.
    """
    provenance = series.provenance if isinstance(series.provenance, dict) else {}
    inputs = provenance.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return provenance
    ids = {i for i in map(_input_id, inputs) if i is not None}
    visible: set[int] = set()
    if user is not None and ids:
        visible = set(series_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))
    shown = copy.deepcopy(provenance)
    shown["inputs"] = [
        item if _input_id(item) in visible else dict(HIDDEN_INPUT) for item in shown["inputs"]
    ]
    return shown
