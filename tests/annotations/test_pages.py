"""The rater's pages: the queue (/rate/) and the workspace (/rate/<id>/), for every role.

A rater sees only their own active assignments; another rater's case, an unassigned one and
anything of another study answer 404. Admins and PIs of the study may open a workspace
read-only. Anonymous visitors go to the login page.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from qsmreview.annotations.models import AssignmentStatus
from tests.api.world import make_series
from tests.fixtures.cast import page_client as client_for

pytestmark = pytest.mark.django_db



def config_of(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="workspace-config" type="application/json">') + len(
        '<script id="workspace-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def mag(media_root, session):
    return make_series(session, "t2star_mag")


@pytest.fixture
def case(session, rater, admin, mag):
    from qsmreview.annotations.services import assignment_create

    return assignment_create(by=admin, session=session, rater=rater)


@pytest.fixture
def case2(session, rater2, admin, mag):
    from qsmreview.annotations.services import assignment_create

    return assignment_create(by=admin, session=session, rater=rater2)


def test_it_sends_anonymous_visitors_to_the_login_page(case) -> None:
    for url in ("/rate/", f"/rate/{case.pk}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_the_queue_lists_the_raters_own_cases_with_a_next_case_link(case, case2, rater) -> None:
    response = client_for(rater).get("/rate/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-assignment="{case.pk}"' in html
    assert f'data-assignment="{case2.pk}"' not in html  # rater2's case of the same session
    assert f'href="/rate/{case.pk}/" data-testid="next-case"' in html
    assert "P01" in html and "Not started" in html


def test_the_queue_says_why_a_case_cannot_be_rated_and_offers_no_next_case(session, rater, admin, media_root) -> None:
    from qsmreview.annotations.services import assignment_create
    from qsmreview.studies.models import Series

    make_series(session, "t2star_mag")
    flair = make_series(session, "flair")
    Series.objects.filter(pk=flair.pk).update(space="native")  # not coregistered yet
    assignment_create(by=admin, session=session, rater=rater)
    html = client_for(rater).get("/rate/").content.decode()
    assert "not on the T2* grid yet" in html
    assert 'data-testid="next-case"' not in html


def test_a_submitted_case_is_not_the_next_case(case, rater) -> None:
    type(case).objects.filter(pk=case.pk).update(status=AssignmentStatus.SUBMITTED)
    html = client_for(rater).get("/rate/").content.decode()
    assert 'data-testid="next-case"' not in html
    assert "View" in html


@pytest.mark.parametrize("who", ["admin", "pi", "outsider", "rater2"])
def test_the_queue_shows_others_only_their_own_assignments(case, who, request) -> None:
    html = client_for(request.getfixturevalue(who)).get("/rate/").content.decode()
    assert f'data-assignment="{case.pk}"' not in html


def test_the_rater_opens_their_case_to_draw(case, rater) -> None:
    response = client_for(rater).get(f"/rate/{case.pk}/")
    assert response.status_code == 200
    config = config_of(response)
    assert config["assignment_id"] == case.pk
    assert config["read_only"] is False and config["is_rater"] is True
    assert config["min_lesion_diameter_mm"] == 2.0
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_a_submitted_case_opens_read_only(case, rater) -> None:
    type(case).objects.filter(pk=case.pk).update(status=AssignmentStatus.SUBMITTED)
    assert config_of(client_for(rater).get(f"/rate/{case.pk}/"))["read_only"] is True


@pytest.mark.parametrize("who", ["admin", "pi", "superuser"])
def test_admins_and_pis_open_a_raters_case_read_only(case, who, request) -> None:
    response = client_for(request.getfixturevalue(who)).get(f"/rate/{case.pk}/")
    assert response.status_code == 200
    config = config_of(response)
    assert config["read_only"] is True and config["is_rater"] is False


@pytest.mark.parametrize("who", ["rater2", "outsider", "other_admin"])
def test_anyone_else_gets_404(case, who, request) -> None:
    assert client_for(request.getfixturevalue(who)).get(f"/rate/{case.pk}/").status_code == 404


def test_an_unassigned_case_is_gone_for_its_rater(case, rater) -> None:
    type(case).objects.filter(pk=case.pk).update(active=False)
    assert client_for(rater).get(f"/rate/{case.pk}/").status_code == 404
    assert f'data-assignment="{case.pk}"' not in client_for(rater).get("/rate/").content.decode()


def test_a_missing_case_is_404(rater) -> None:
    assert client_for(rater).get("/rate/999999/").status_code == 404
