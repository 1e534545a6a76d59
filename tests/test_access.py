"""The one access module (qsmreview/access.py), on its own: this rater / another rater / PI /
outsider / admin / other study's admin / superuser / the system, for every read and write rule.

The HTTP matrix (tests/api/test_permission_matrix.py) checks that every route applies these
rules; this checks the rules themselves.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from qsmreview import access
from qsmreview.errors import Forbidden, NotFound
from qsmreview.jobs.models import Job
from tests.api.world import make_series

pytestmark = pytest.mark.django_db

SYSTEM = access.system("tests")


@pytest.fixture
def world(
    media_root, study, other_study, session, other_session, admin, rater, rater2, pi, other_admin, outsider, superuser,
    assignment,
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


# who -> (role in study, sees study, sees the session and its unblinded series, sees blinded
# series, sees the study's jobs, manages). Rater 1 is assigned the session; rater 2 is not.
CAST = {
    "admin": ("admin", True, True, True, True, True),
    "rater": ("rater", True, True, False, False, False),
    "rater2": ("rater", True, False, False, False, False),
    "pi": ("pi", True, True, True, True, False),
    "other_admin": (None, False, False, False, False, False),
    "outsider": (None, False, False, False, False, False),
    "anonymous": (None, False, False, False, False, False),
    "superuser": ("admin", True, True, True, True, True),
    "system": ("admin", True, True, True, True, True),
}


@pytest.mark.parametrize("who", CAST)
def test_it_gives_each_role_its_reads_and_writes(request, who, world, study, session, subject) -> None:
    (user,) = users(request, [who])
    role, sees_study, sees_session, sees_blinded, sees_jobs, manages = CAST[who]

    assert access.role_in_study(user, study) == role
    assert (study in access.studies_visible_to(user)) is sees_study
    assert (subject in access.subjects_visible_to(user)) is sees_session
    assert (session in access.sessions_visible_to(user)) is sees_session
    assert (world["mag"] in access.series_visible_to(user)) is sees_session
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


# --- assignments and revisions: a rater sees only their own, and only while assigned -----------


def _revision(assignment):
    from qsmreview.annotations.models import Revision

    return Revision.objects.create(assignment=assignment, number=1, file="annotations/x.nii.gz", size_bytes=1, sha256="0" * 64)


@pytest.mark.parametrize(
    "who, sees_own_raters, sees_rater2s, can_rate_own",
    [
        ("admin", True, True, False),
        ("pi", True, True, False),
        ("rater", True, False, True),
        ("rater2", False, True, False),
        ("other_admin", False, False, False),
        ("outsider", False, False, False),
        ("anonymous", False, False, False),
        ("superuser", True, True, False),
    ],
)
def test_it_shows_each_rater_only_their_own_work(
    request, who, sees_own_raters, sees_rater2s, can_rate_own, session, assignment, rater2
) -> None:
    from qsmreview.annotations.models import Assignment

    (user,) = users(request, [who])
    theirs = Assignment.objects.create(session=session, rater=rater2)
    own_rev, their_rev = _revision(assignment), _revision(theirs)

    assert (assignment in access.assignments_visible_to(user)) is sees_own_raters
    assert (theirs in access.assignments_visible_to(user)) is sees_rater2s
    assert (own_rev in access.revisions_visible_to(user)) is sees_own_raters
    assert (their_rev in access.revisions_visible_to(user)) is sees_rater2s
    assert access.can_rate(user, assignment) is can_rate_own


def test_it_hides_an_unassigned_case_and_its_session_from_its_rater(session, assignment, rater) -> None:
    mag = make_series(session, "t2star_mag")
    assignment.active = False
    assignment.save(update_fields=["active"])

    assert session not in access.sessions_visible_to(rater)
    assert mag not in access.series_visible_to(rater)
    assert assignment not in access.assignments_visible_to(rater)
    assert not access.can_rate(rater, assignment)


def test_it_hides_a_raters_assignment_once_their_membership_is_gone(session, assignment, rater) -> None:
    from qsmreview.studies.models import Membership

    Membership.objects.filter(user=rater).delete()

    assert session not in access.sessions_visible_to(rater)
    assert assignment not in access.assignments_visible_to(rater)


@pytest.mark.parametrize(
    "who, error",
    [("rater", None), ("rater2", NotFound), ("outsider", NotFound), ("admin", Forbidden), ("pi", Forbidden),
     ("system", None)],
)
def test_it_lets_only_the_assigned_rater_draw(request, who, error, assignment, rater2, admin, pi, outsider) -> None:
    (user,) = users(request, [who])
    if error is None:
        access.require_rate(user, assignment)
    else:
        with pytest.raises(error):
            access.require_rate(user, assignment)
