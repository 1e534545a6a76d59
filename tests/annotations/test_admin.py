"""Assignments, revisions and events in Django admin: read-only, and only the admin's own studies."""

from __future__ import annotations

import pytest
from django.urls import reverse

from qsmreview.annotations.services import assignment_create, revision_create
from qsmreview.studies.models import Membership
from tests.annotations.conftest import mask_bytes
from tests.api.world import make_series
from tests.fixtures.cast import make_user
from tests.fixtures.cast import page_client as client_for

pytestmark = pytest.mark.django_db

MODELS = ("assignment", "revision", "assignmentevent")


@pytest.fixture
def staff_admin(study):
    user = make_user("staffadmin", is_staff=True)
    Membership.objects.create(study=study, user=user, role="admin")
    return user


@pytest.fixture
def neighbour_case(other_study, other_session, other_admin):
    other_session.subject.code = "NEIGHBOUR-01"
    other_session.subject.save(update_fields=["code"])
    make_series(other_session, "t2star_mag")
    rater = make_user("neighbour_rater")
    Membership.objects.create(study=other_study, user=rater, role="rater")
    case = assignment_create(by=other_admin, session=other_session, rater=rater)
    revision_create(by=rater, assignment=case, mask_bytes=mask_bytes((1, 1, 1)), parent=None, lesions=[])
    return case



@pytest.mark.parametrize("model", MODELS)
def test_it_lists_own_rows_only_and_offers_no_writes(model, staff_admin, assignment, rater, neighbour_case) -> None:
    revision_create(by=rater, assignment=assignment, mask_bytes=mask_bytes((1, 1, 1)), parent=None, lesions=[])
    client = client_for(staff_admin)

    page = client.get(reverse(f"admin:annotations_{model}_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "P01" in html and "NEIGHBOUR-01" not in html
    assert client.get(reverse(f"admin:annotations_{model}_add")).status_code == 403


def test_a_change_page_is_read_only(staff_admin, assignment, neighbour_case) -> None:
    client = client_for(staff_admin)
    url = reverse("admin:annotations_assignment_change", args=[assignment.pk])

    page = client.get(url)
    posted = client.post(url, {"status": "submitted"})

    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    assert posted.status_code == 403
    assignment.refresh_from_db()
    assert assignment.status == "not_started"
    neighbour = reverse("admin:annotations_assignment_change", args=[neighbour_case.pk])
    assert client.get(neighbour).status_code in (302, 404)
