"""Access checks shared by the API views; the rules themselves live in ``qsmreview.access``.

Reads are scoped by :mod:`qsmreview.access`'s querysets, so an object the user may not see is simply not
found (404, as if it did not exist). Writes need a role on top: these checks answer 403 to a user
who can see the object but may not change it. Both raise domain errors, so every refusal has the
same ``{"detail", "code"}`` body.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from qsmreview.errors import Forbidden, NotFound
from qsmreview.studies.models import Role, Series, Session, Study, Subject
from qsmreview.access import require_manage, role_in_study


def study_of(obj: Model) -> Study:
    """The study an object belongs to."""
    if isinstance(obj, Study):
        return obj
    if isinstance(obj, Subject):
        return obj.study
    if isinstance(obj, (Session, Series)):
        return obj.study
    raise TypeError(f"no study for {type(obj).__name__}")


def get_visible_or_404(queryset: QuerySet, pk: Any, what: str) -> Any:
    """The object ``pk`` of a selector's queryset, or :class:`NotFound` ("no such <what>")."""
    try:
        obj = queryset.filter(pk=int(pk)).first()
    except (TypeError, ValueError):
        obj = None
    if obj is None:
        raise NotFound(f"no such {what}")
    return obj


def require_study_admin(user: Any, obj: Model, action: str) -> None:
    """Raise :class:`Forbidden` unless ``user`` is an admin of ``obj``'s study (:func:`require_manage`)."""
    require_manage(user, study_of(obj), action)


def require_study_role(user: Any, obj: Model, roles: tuple[Role, ...], message: str) -> None:
    """Raise :class:`Forbidden` with ``message`` unless ``user`` holds one of ``roles`` there."""
    if role_in_study(user, study_of(obj)) not in roles:
        raise Forbidden(message)
