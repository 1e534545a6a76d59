"""Studies, their members, subjects and sessions: the write side.

Every function is keyword-only, takes the acting user as ``by``, checks that user's right to act
(``require_create_study`` / ``require_manage`` of :mod:`qsmreview.access`) and raises a :mod:`qsmreview.errors` error whose
message a user can act on. Callers resolve objects through :mod:`qsmreview.access` first, so an object the
user cannot see has already answered 404 before a service is called.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from qsmreview.errors import Conflict, NotFound, ValidationFailed
from qsmreview.studies.models import Membership, Role, Series, Session, Study, Subject
from qsmreview.access import Actor, require_create_study, require_manage, require_superuser, user_or_none
from qsmreview.studies.services.series import series_set_current

#: Fields a caller may change through the ``*_update`` services.
STUDY_FIELDS = frozenset({"name", "description", "field_strength_t", "protocol"})
SUBJECT_FIELDS = frozenset(
    {
        "code",
        "sex",
        "age_years",
        "disease_duration_years",
        "phenotype",
        "treatment",
        "min_wm_lesion_age_months",
        "notes",
        "extra",
    }
)
SESSION_FIELDS = frozenset({"label", "scan_date", "scanner", "field_strength_t"})


# --- helpers ---------------------------------------------------------------------------------


def _check_fields(changes: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed(
            f"{what} field(s) {', '.join(unknown)} cannot be set; "
            f"allowed: {', '.join(sorted(allowed))}",
            field=unknown[0],
        )


def _validate(instance: models.Model, fields: set[str]) -> None:
    """Run the model's field validators (choices, minimum values) on ``fields`` only."""
    exclude = {f.name for f in instance._meta.fields} - fields
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ValidationFailed(f"{field}: {' '.join(messages)}", field=field) from exc


def _validate_protocol(protocol: Any) -> dict[str, Any]:
    from qsmreview.processing.protocol import qsm_parameters

    if not isinstance(protocol, dict):
        raise ValidationFailed("protocol must be a JSON object", field="protocol")
    qsm = protocol.get("qsm", {})
    if not isinstance(qsm, dict):
        raise ValidationFailed("protocol.qsm must be a JSON object", field="protocol")
    try:
        qsm_parameters(protocol)
    except ValidationFailed as exc:
        raise ValidationFailed(f"protocol.qsm: {exc.message}", field="protocol") from exc
    return protocol


def _save(instance: models.Model, *, update_fields: list[str] | None, conflict: str) -> None:
    """Save, turning a lost race on a unique constraint into the same Conflict as the check."""
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


# --- studies ---------------------------------------------------------------------------------


def study_create(
    *,
    by: Actor,
    name: str,
    description: str = "",
    field_strength_t: float = 7.0,
    protocol: dict[str, Any] | None = None,
    admin: AbstractBaseUser | None = None,
) -> Study:
    """Create a study with a first admin: ``admin`` if given, else its creator ``by``.

    A study always has an admin, so a system actor (a management command) must name one.

    Raises
    ------
    Forbidden
        ``by`` is neither staff nor a superuser.
    ValidationFailed
        ``by`` is the system and no ``admin`` is named.
    Conflict
        A study with this name exists.
    ValidationFailed
        A field is out of range or the protocol is invalid.
    """
    require_create_study(by)
    first_admin = admin if admin is not None else user_or_none(by)
    if first_admin is None:
        raise ValidationFailed("a new study needs an admin: name the user who administers it", field="admin")
    name = name.strip()
    study = Study(
        name=name,
        description=description,
        field_strength_t=field_strength_t,
        protocol=_validate_protocol(protocol if protocol is not None else {}),
        created_by=user_or_none(by),
    )
    _validate(study, {"name", "description", "field_strength_t"})
    conflict = f"a study named {name!r} already exists"
    if Study.objects.filter(name=name).exists():
        raise Conflict(conflict, field="name")
    with transaction.atomic():
        _save(study, update_fields=None, conflict=conflict)
        Membership.objects.create(study=study, user=first_admin, role=Role.ADMIN)
    return study


def study_update(*, study: Study, by: Actor, **changes: Any) -> Study:
    """Change a study's name, description, field strength or protocol (its admins only)."""
    require_manage(by, study, "edit it")
    _check_fields(changes, STUDY_FIELDS, "study")
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
    if "protocol" in changes:
        _validate_protocol(changes["protocol"])
    for key, value in changes.items():
        setattr(study, key, value)
    _validate(study, set(changes))
    conflict = f"a study named {study.name!r} already exists"
    if "name" in changes and Study.objects.filter(name=study.name).exclude(pk=study.pk).exists():
        raise Conflict(conflict, field="name")
    if changes:
        _save(study, update_fields=sorted(changes), conflict=conflict)
    return study


def study_delete(*, study: Study, by: Actor) -> None:
    """Delete a study with all its subjects, sessions, series rows and jobs (superusers only).

    The volumes' files are left to the orphan sweep (``services.orphans``), which deletes stored
    files that no row references once they are older than its grace period.
    """
    require_superuser(by, "delete studies")
    study.delete()


# --- memberships -----------------------------------------------------------------------------


def _admin_count(study: Study) -> int:
    return Membership.objects.filter(study=study, role=Role.ADMIN).count()


def membership_is_last_admin(membership: Membership) -> bool:
    """Whether removing or demoting ``membership`` would leave its study without an admin."""
    return membership.role == Role.ADMIN and not (
        Membership.objects.filter(study_id=membership.study_id, role=Role.ADMIN).exclude(pk=membership.pk).exists()
    )


def membership_set(
    *, study: Study, by: Actor, user: AbstractBaseUser, role: str
) -> tuple[Membership, bool]:
    """Give ``user`` the ``role`` in ``study`` (add them, or change their role).

    Returns
    -------
    membership, created
        ``created`` is False when an existing member's role was changed (or kept).

    Raises
    ------
    Conflict
        The change would leave the study without an admin.
    """
    require_manage(by, study, "change its members")
    if role not in Role.values:
        raise ValidationFailed(
            f"role must be one of {', '.join(Role.values)}, got {role!r}", field="role"
        )
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(study=study, user=user).first()
        )
        if membership is None:
            return Membership.objects.create(study=study, user=user, role=role), True
        if membership.role == Role.ADMIN and role != Role.ADMIN and _admin_count(study) == 1:
            raise Conflict(
                f"{user.get_username()} is the study's only admin; make another member admin first",
                field="role",
            )
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        return membership, False


def membership_remove(*, study: Study, by: Actor, user: AbstractBaseUser) -> None:
    """Remove ``user`` from ``study``; the study's last admin cannot be removed."""
    require_manage(by, study, "change its members")
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(study=study, user=user).first()
        )
        if membership is None:
            raise NotFound(f"{user.get_username()} is not a member of this study")
        if membership.role == Role.ADMIN and _admin_count(study) == 1:
            raise Conflict(
                f"{user.get_username()} is the study's only admin; make another member admin first"
            )
        membership.delete()


# --- subjects --------------------------------------------------------------------------------


def _subject_conflict(study: Study, code: str) -> str:
    return f"subject {code!r} already exists in study {study.name!r}"


def subject_create(*, study: Study, by: Actor, code: str, **fields: Any) -> Subject:
    """Add a pseudonymous subject to the study. ``code`` is unique within the study."""
    require_manage(by, study, "add subjects")
    _check_fields(fields, SUBJECT_FIELDS - {"code"}, "subject")
    code = code.strip()
    subject = Subject(study=study, code=code, **fields)
    _validate(subject, {"code", *fields})
    if Subject.objects.filter(study=study, code=code).exists():
        raise Conflict(_subject_conflict(study, code), field="code")
    _save(subject, update_fields=None, conflict=_subject_conflict(study, code))
    return subject


def subject_update(*, subject: Subject, by: Actor, **changes: Any) -> Subject:
    """Change a subject's code or clinical data (its study's admins only)."""
    study = subject.study
    require_manage(by, study, "edit subjects")
    _check_fields(changes, SUBJECT_FIELDS, "subject")
    if "code" in changes:
        changes["code"] = str(changes["code"]).strip()
    for key, value in changes.items():
        setattr(subject, key, value)
    _validate(subject, set(changes))
    conflict = _subject_conflict(study, subject.code)
    if (
        "code" in changes
        and Subject.objects.filter(study=study, code=subject.code).exclude(pk=subject.pk).exists()
    ):
        raise Conflict(conflict, field="code")
    if changes:
        _save(subject, update_fields=sorted(changes), conflict=conflict)
    return subject


# --- sessions --------------------------------------------------------------------------------


def _session_conflict(subject: Subject, label: str) -> str:
    return f"subject {subject.code!r} already has a session {label!r}"


def session_create(
    *, subject: Subject, by: Actor, label: str, **fields: Any
) -> Session:
    """Add a scanning session to a subject. The field strength defaults to the study's."""
    study = subject.study
    require_manage(by, study, "add sessions")
    _check_fields(fields, SESSION_FIELDS - {"label"}, "session")
    label = label.strip()
    fields.setdefault("field_strength_t", study.field_strength_t)
    session = Session(subject=subject, label=label, **fields)
    _validate(session, {"label", *fields})
    if Session.objects.filter(subject=subject, label=label).exists():
        raise Conflict(_session_conflict(subject, label), field="label")
    _save(session, update_fields=None, conflict=_session_conflict(subject, label))
    return session


def session_update(*, session: Session, by: Actor, **changes: Any) -> Session:
    """Change a session's label, date, scanner or field strength (its study's admins only)."""
    subject = session.subject
    require_manage(by, subject.study, "edit sessions")
    _check_fields(changes, SESSION_FIELDS, "session")
    if "label" in changes:
        changes["label"] = str(changes["label"]).strip()
    for key, value in changes.items():
        setattr(session, key, value)
    _validate(session, set(changes))
    conflict = _session_conflict(subject, session.label)
    if (
        "label" in changes
        and Session.objects.filter(subject=subject, label=session.label)
        .exclude(pk=session.pk)
        .exists()
    ):
        raise Conflict(conflict, field="label")
    if changes:
        _save(session, update_fields=sorted(changes), conflict=conflict)
    return session


# --- series flags ----------------------------------------------------------------------------
# Series are immutable; only whether raters may see one (``blinded``) and which version of its
# slot is current can change, by the study's admins. (Storing series is ``services.series``.)


def series_update(
    *,
    series: Series,
    by: Actor,
    blinded: bool | None = None,
    is_current: bool | None = None,
) -> Series:
    """Blind or unblind a series, or make it (or stop it being) the current version of its slot.

    Making a series current demotes the slot's previous current version in the same transaction
    (``services.series.series_set_current``), so a slot never has two. Un-marking the current
    version leaves the slot without one (a withdrawn volume).
    """
    require_manage(by, series.study, "change series")
    with transaction.atomic():
        if is_current is True and not series.is_current:
            series_set_current(series=series, by=by)
        elif is_current is False and series.is_current:
            series.is_current = False
            series.save(update_fields=["is_current"])
        if blinded is not None and blinded != series.blinded:
            series.blinded = blinded
            series.save(update_fields=["blinded"])
    return series
