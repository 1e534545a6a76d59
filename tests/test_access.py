"""The one access module (qsmreview/access.py), on its own: this rater / another rater / PI /
outsider / admin / other study's admin / superuser / the system, for every read and write rule.

The HTTP matrix (tests/api/test_permission_matrix.py) checks that every route applies these
rules; this checks the rules themselves.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from qsmreview import access
from qsmreview.errors import Forbidden
from qsmreview.jobs.models import Job
from tests.api.world import make_series

pytestmark = pytest.mark.django_db

SYSTEM = access.system("tests")


@pytest.fixture
def world(
    media_root, study, other_study, session, other_session, admin, rater, rater2, pi, other_admin, outsider, superuser
):
    return {
        "mag": make_series(session, "t2star_mag"),
        "qsm": make_series(session, "qsm"),
        "other_mag": make_series(other_session, "t2star_mag"),
        "job": Job.objects.create(kind="selftest", study=study, session=session),
        "other_job": Job.objects.create(kind="selftest", study=other_study),
        "orphan_job": Job.objects.create(kind="selftest"),
    }


def users(request, names):
    return [request.getfixturevalue(n) if n not in ("anonymous", "system") else
            (AnonymousUser() if n == "anonymous" else SYSTEM) for n in names]


# who -> (role in study, sees study, sees blinded series, sees the study's jobs, manages)
CAST = {
    "admin": ("admin", True, True, True, True),
    "rater": ("rater", True, False, False, False),
    "rater2": ("rater", True, False, False, False),
    "pi": ("pi", True, True, True, False),
    "other_admin": (None, False, False, False, False),
    "outsider": (None, False, False, False, False),
    "anonymous": (None, False, False, False, False),
    "superuser": ("admin", True, True, True, True),
    "system": ("admin", True, True, True, True),
}


@pytest.mark.parametrize("who", CAST)
def test_it_gives_each_role_its_reads_and_writes(request, who, world, study, session, subject) -> None:
    (user,) = users(request, [who])
    role, sees_study, sees_blinded, sees_jobs, manages = CAST[who]

    assert access.role_in_study(user, study) == role
    assert (study in access.studies_visible_to(user)) is sees_study
    assert (subject in access.subjects_visible_to(user)) is sees_study
    assert (session in access.sessions_visible_to(user)) is sees_study
    assert (world["mag"] in access.series_visible_to(user)) is sees_study
    assert (world["qsm"] in access.series_visible_to(user)) is sees_blinded
    assert (world["job"] in access.jobs_visible_to(user)) is sees_jobs
    assert access.can_manage_study(user, study) is manages
    assert access.can_manage_study(user, study.pk) is manages
    assert (study in access.studies_managed_by(user)) is manages
    assert access.can_see_unblinded(user, study) is (role in ("admin", "pi"))
    if manages:
        access.require_manage(user, study, "edit it")
    else:
        with pytest.raises(Forbidden, match="only the study's admins can edit it"):
            access.require_manage(user, study, "edit it")


@pytest.mark.parametrize("who", ["admin", "rater", "pi", "outsider", "anonymous"])
def test_nobody_but_a_superuser_sees_another_study_or_a_job_without_a_study(request, who, world) -> None:
    (user,) = users(request, [who])
    assert world["other_mag"] not in access.series_visible_to(user)
    assert world["other_job"] not in access.jobs_visible_to(user)
    assert world["orphan_job"] not in access.jobs_visible_to(user)
    with pytest.raises(Forbidden):
        access.require_superuser(user, "do that")


def test_the_system_actor_has_every_right_but_is_never_recorded_as_a_user(admin) -> None:
    actor = access.system("job #12")

    assert actor.get_username() == "system (job #12)"
    assert access.user_or_none(actor) is None
    assert access.user_or_none(AnonymousUser()) is None
    assert access.user_or_none(admin) is admin
    access.require_superuser(actor, "do anything")
    access.require_create_study(actor)


@pytest.mark.parametrize("who, allowed", [("superuser", True), ("admin", False), ("outsider", False)])
def test_only_staff_create_studies(request, who, allowed) -> None:
    (user,) = users(request, [who])
    if who == "admin":
        user.is_staff = True
        allowed = True
    assert access.can_create_study(user) is allowed
