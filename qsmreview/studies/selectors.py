"""Who may see what. Every view, page, API route and export reads through these functions.

Rules (blinding is security):

- a superuser sees everything;
- a study's admin and PI see everything in that study, blinded series included;
- a rater sees the study, its subjects and sessions, and only the series that are not blinded
  (never QSM or lesion masks by default), and no jobs (their outputs and parameters would unblind);
- anyone else sees nothing of the study: it answers 404, as if it did not exist.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from qsmreview.studies.models import Membership, Role, Series, Session, Study, Subject

AnyUser = AbstractBaseUser | AnonymousUser


def _is_super(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.is_superuser)


def role_in_study(user: AnyUser, study: Study | int) -> Role | None:
    """The user's role in the study, or None. A superuser counts as admin everywhere."""
    if not user.is_authenticated:
        return None
    if _is_super(user):
        return Role.ADMIN
    study_id = study if isinstance(study, int) else study.pk
    role = (
        Membership.objects.filter(user=user, study_id=study_id).values_list("role", flat=True).first()
    )
    return Role(role) if role else None


def can_create_study(user: AnyUser) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.is_staff))


def can_manage_study(user: AnyUser, study: Study | int) -> bool:
    """Admins of the study may upload, edit and run jobs."""
    return role_in_study(user, study) == Role.ADMIN


def can_see_unblinded(user: AnyUser, study: Study | int) -> bool:
    return role_in_study(user, study) in (Role.ADMIN, Role.PI)


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


def subjects_visible_to(user: AnyUser) -> QuerySet[Subject]:
    return Subject.objects.filter(study__in=studies_visible_to(user))


def sessions_visible_to(user: AnyUser) -> QuerySet[Session]:
    return Session.objects.filter(subject__study__in=studies_visible_to(user))


def series_visible_to(user: AnyUser) -> QuerySet[Series]:
    """Series the user may list and download: blinded ones only for the study's admin and PI."""
    if not user.is_authenticated:
        return Series.objects.none()
    if _is_super(user):
        return Series.objects.all()
    unblinded_studies = _study_ids(user, (Role.ADMIN, Role.PI))
    all_studies = _study_ids(user)
    return Series.objects.filter(
        Q(session__subject__study_id__in=unblinded_studies)
        | Q(session__subject__study_id__in=all_studies, blinded=False)
    )


def jobs_visible_to(user: AnyUser) -> QuerySet:
    """Jobs of the studies where the user is admin or PI (raters see no jobs)."""
    from qsmreview.jobs.models import Job

    if not user.is_authenticated:
        return Job.objects.none()
    if _is_super(user):
        return Job.objects.all()
    return Job.objects.filter(study_id__in=_study_ids(user, (Role.ADMIN, Role.PI)))
