"""Studies, their members, subjects and sessions: the write side.

Every function is keyword-only, takes the acting user as ``by``, checks that user's right to act
(``can_create_study`` / ``can_manage_study``) and raises a :mod:`qsmreview.errors` error whose
message a user can act on. Callers resolve objects through the selectors first, so an object the
user cannot see has already answered 404 before a service is called.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from qsmreview.errors import Conflict, Forbidden, NotFound, ValidationFailed
from qsmreview.studies.models import Membership, Role, Series, Session, Study, Subject
from qsmreview.studies.selectors import can_create_study, can_manage_study
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


def _require_manager(by: AbstractBaseUser, study: Study, action: str) -> None:
    if not can_manage_study(by, study):
        raise Forbidden(f"only the study's admins can {action}")


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
    by: AbstractBaseUser,
    name: str,
    description: str = "",
    field_strength_t: float = 7.0,
    protocol: dict[str, Any] | None = None,
) -> Study:
    """Create a study; its creator becomes its first admin.

    Raises
    ------
    Forbidden
        ``by`` is neither staff nor a superuser.
    Conflict
        A study with this name exists.
    ValidationFailed
        A field is out of range or the protocol is invalid.
    """
    if not can_create_study(by):
        raise Forbidden("only staff can create studies")
    name = name.strip()
    study = Study(
        name=name,
        description=description,
        field_strength_t=field_strength_t,
        protocol=_validate_protocol(protocol if protocol is not None else {}),
        created_by=by,
    )
    _validate(study, {"name", "description", "field_strength_t"})
    conflict = f"a study named {name!r} already exists"
    if Study.objects.filter(name=name).exists():
        raise Conflict(conflict, field="name")
    with transaction.atomic():
        _save(study, update_fields=None, conflict=conflict)
        Membership.objects.create(study=study, user=by, role=Role.ADMIN)
    return study


def study_update(*, study: Study, by: AbstractBaseUser, **changes: Any) -> Study:
    """Change a study's name, description, field strength or protocol (its admins only)."""
    _require_manager(by, study, "edit it")
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


# --- memberships -----------------------------------------------------------------------------


def _admin_count(study: Study) -> int:
    return Membership.objects.filter(study=study, role=Role.ADMIN).count()


def membership_set(
    *, study: Study, by: AbstractBaseUser, user: AbstractBaseUser, role: str
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
    _require_manager(by, study, "change its members")
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


def membership_remove(*, study: Study, by: AbstractBaseUser, user: AbstractBaseUser) -> None:
    """Remove ``user`` from ``study``; the study's last admin cannot be removed."""
    _require_manager(by, study, "change its members")
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


def subject_create(*, study: Study, by: AbstractBaseUser, code: str, **fields: Any) -> Subject:
    """Add a pseudonymous subject to the study. ``code`` is unique within the study."""
    _require_manager(by, study, "add subjects")
    _check_fields(fields, SUBJECT_FIELDS - {"code"}, "subject")
    code = code.strip()
    subject = Subject(study=study, code=code, **fields)
    _validate(subject, {"code", *fields})
    if Subject.objects.filter(study=study, code=code).exists():
        raise Conflict(_subject_conflict(study, code), field="code")
    _save(subject, update_fields=None, conflict=_subject_conflict(study, code))
    return subject


def subject_update(*, subject: Subject, by: AbstractBaseUser, **changes: Any) -> Subject:
    """Change a subject's code or clinical data (its study's admins only)."""
    study = subject.study
    _require_manager(by, study, "edit subjects")
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
    *, subject: Subject, by: AbstractBaseUser, label: str, **fields: Any
) -> Session:
    """Add a scanning session to a subject. The field strength defaults to the study's."""
    study = subject.study
    _require_manager(by, study, "add sessions")
    _check_fields(fields, SESSION_FIELDS - {"label"}, "session")
    label = label.strip()
    fields.setdefault("field_strength_t", study.field_strength_t)
    session = Session(subject=subject, label=label, **fields)
    _validate(session, {"label", *fields})
    if Session.objects.filter(subject=subject, label=label).exists():
        raise Conflict(_session_conflict(subject, label), field="label")
    _save(session, update_fields=None, conflict=_session_conflict(subject, label))
    return session


def session_update(*, session: Session, by: AbstractBaseUser, **changes: Any) -> Session:
    """Change a session's label, date, scanner or field strength (its study's admins only)."""
    subject = session.subject
    _require_manager(by, subject.study, "edit sessions")
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
    by: AbstractBaseUser,
    blinded: bool | None = None,
    is_current: bool | None = None,
) -> Series:
    """Blind or unblind a series, or make it (or stop it being) the current version of its slot.

    Making a series current demotes the slot's previous current version in the same transaction
    (``services.series.series_set_current``), so a slot never has two. Un-marking the current
    version leaves the slot without one (a withdrawn volume).
    """
    _require_manager(by, series.study, "change series")
    with transaction.atomic():
        if is_current is True and not series.is_current:
            series_set_current(series=series)
        elif is_current is False and series.is_current:
            series.is_current = False
            series.save(update_fields=["is_current"])
        if blinded is not None and blinded != series.blinded:
            series.blinded = blinded
            series.save(update_fields=["blinded"])
    return series
