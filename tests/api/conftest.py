"""Fixtures of the API tests: stored files go to a temporary media root; the two-study world."""

from __future__ import annotations

import pytest

from tests.api.world import World, build_side, build_world
from tests.fixtures.cast import make_user


@pytest.fixture(autouse=True)
def _fresh_media_root(media_root):
    """Every API test stores its files under its own ``tmp_path`` (``tests.fixtures.nifti``)."""
    return media_root


@pytest.fixture
def staff(db):
    """Staff without a study: may create studies, sees nothing else."""
    return make_user("staff", is_staff=True)


@pytest.fixture
def other_rater(other_study):
    from qsmreview.studies.models import Membership

    user = make_user("other_rater")
    Membership.objects.create(study=other_study, user=user, role="rater")
    return user


@pytest.fixture
def newbie(db):
    """A user in no study, whom the members routes add."""
    return make_user("newbie")


@pytest.fixture
def world(
    study, other_study, admin, rater, pi, other_admin, other_rater, outsider, staff, superuser,
    newbie, session, other_session,
) -> World:
    users = {
        "anonymous": None,
        "outsider": outsider,
        "staff": staff,
        "rater": rater,
        "pi": pi,
        "admin": admin,
        "other_admin": other_admin,
        "superuser": superuser,
        "newbie": newbie,
    }
    own = build_side("own", study, session, rater, admin)
    other = build_side("other", other_study, other_session, other_rater, other_admin)
    return build_world(users=users, own=own, other=other)
