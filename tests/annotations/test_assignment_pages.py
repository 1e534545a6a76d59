"""The study's assignments and progress page, the links to it, and what a rater's pages show.

Cast (tests/fixtures/cast.py): ``admin``, ``pi``, ``rater`` (rater1), ``rater2``, ``rater3`` in
``study``; ``other_admin`` of ``other_study``; ``outsider``; ``superuser``.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from qsmreview.annotations.models import Assignment, AssignmentStatus
from qsmreview.annotations.templatetags.assignment_progress import ago, hours_minutes
from qsmreview.studies.models import Session, Subject
from tests.fixtures.cast import page_client as client_for
from tests.web.test_pages import make_series


def main_html(html: str) -> str:
    """The page's own content (the layout's header holds the logout form on every page), with CSRF
    tokens blanked: they are random and may by chance contain a digit string a test looks for."""
    main = html[html.index("<main>") : html.index("</main>")]
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken" value=""', main)


@pytest.fixture
def cases(study, session, rater, rater2, admin):
    """rater1 and rater2 each rate the session; rater1 has saved work, rater2 has not started."""
    now = timezone.now()
    mine = Assignment.objects.create(
        session=session, rater=rater, assigned_by=admin, status=AssignmentStatus.IN_PROGRESS,
        last_saved_at=now - timedelta(minutes=5), lesion_count=7, active_seconds=3725,
    )
    theirs = Assignment.objects.create(session=session, rater=rater2, assigned_by=admin)
    return {"rater": mine, "rater2": theirs}


# --- who may open the page -----------------------------------------------------------------------

ACCESS = {
    "anonymous": 302,
    "outsider": 404,
    "rater": 404,
    "rater2": 404,
    "other_admin": 404,
    "pi": 200,
    "admin": 200,
    "superuser": 200,
}


@pytest.mark.parametrize("who, status", ACCESS.items())
def test_it_answers_each_role(request, who, status, study, cases, other_admin, pi, superuser, outsider) -> None:
    user = None if who == "anonymous" else request.getfixturevalue(who)
    response = client_for(user).get(f"/studies/{study.pk}/assignments/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("who", ["rater", "outsider", "other_admin"])
def test_it_answers_404_exactly_like_a_missing_study(request, who, study, cases, other_admin, outsider) -> None:
    client = client_for(request.getfixturevalue(who))
    hidden = client.get(f"/studies/{study.pk}/assignments/")
    missing = client.get("/studies/999999/assignments/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    assert client.get(f"/studies/{study.pk}/assignments/?partial=rows").status_code == 404


def test_another_studys_admin_cannot_open_it_for_their_own_study_either(admin, other_study, other_admin, study) -> None:
    """Admins of one study do not reach another's page, nor does this study's admin reach theirs."""
    assert client_for(admin).get(f"/studies/{other_study.pk}/assignments/").status_code == 404
    assert client_for(other_admin).get(f"/studies/{other_study.pk}/assignments/").status_code == 200


# --- what the admin and the PI see ----------------------------------------------------------------


def test_it_gives_the_admin_the_assignment_controls(admin, study, cases, rater3) -> None:
    html = main_html(client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode())
    assert 'data-testid="bulk-form"' in html and "Assign every session to these raters" in html
    for name in ("rater1", "rater2", "rater3"):
        assert f'data-testid="bulk-rater-{name}"' in html
    assert html.count('data-action="unassign"') == 2
    assert 'name="cell"' in html  # rater3 is not assigned: a box to tick
    assert f'href="/rate/{cases["rater"].pk}/"' in html
    assert 'id="reason-dialog"' in html and "qsmreview/assignments.js" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_it_shows_the_pi_the_table_without_any_control(pi, study, cases) -> None:
    html = main_html(client_for(pi).get(f"/studies/{study.pk}/assignments/").content.decode())
    assert 'data-testid="progress"' in html and "rater1" in html and "rater2" in html
    assert "<form" not in html and "<button" not in html and "<input" not in html
    assert "<dialog" not in html and 'data-manage="false"' in html
    assert "/rate/" not in html  # the admin's "open" link


def test_it_shows_each_cells_progress(admin, study, cases) -> None:
    html = client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode()
    mine = cell(html, cases["rater"])
    assert "in progress" in mine and "7 lesions" in mine and "1:02" in mine
    assert re.search(r"saved <time datetime=\"[^\"]+\" title=\"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\">5\xa0minutes ago</time>", mine)
    theirs = cell(html, cases["rater2"])
    assert "not started" in theirs and "no save yet" in theirs and "0 lesions" in theirs and "0:00" in theirs


def test_it_marks_an_unassigned_rater_as_not_assigned(admin, study, session, rater, rater2) -> None:
    gone = Assignment.objects.create(session=session, rater=rater, active=False)
    html = client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode()
    assert f'data-assignment="{gone.pk}"' not in html
    assert html.count("not assigned") == 2


def test_it_sorts_subjects_by_code_and_raters_by_username(admin, study, rater3, rater2, rater) -> None:
    for code in ("P10", "P02", "P01"):
        Session.objects.create(subject=Subject.objects.create(study=study, code=code), label="01")
    html = client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode()
    assert re.findall(r'<th scope="row" class="subject">(\w+)</th>', html) == ["P01", "P02", "P10"]
    assert re.findall(r'<th class="rater" data-rater="\d+">(\w+)</th>', html) == ["rater1", "rater2", "rater3"]


def test_it_says_why_a_session_cannot_be_rated_and_links_to_processing(admin, study, session) -> None:
    make_series(session, "t2star_mag", blinded=False)
    flair = make_series(session, "flair", blinded=False)
    type(flair).objects.filter(pk=flair.pk).update(space="native")
    html = client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode()
    reason = html[html.index(f'data-testid="not-rateable-{session.pk}"') :]
    reason = reason[: reason.index("</div>")]
    assert "FLAIR is not on the T2* grid yet: run coregistration" in reason
    assert f'href="/studies/{study.pk}/processing/"' in reason


def test_a_rateable_session_has_no_reason(admin, study, session) -> None:
    make_series(session, "t2star_mag", blinded=False)
    html = client_for(admin).get(f"/studies/{study.pk}/assignments/").content.decode()
    assert f'data-testid="not-rateable-{session.pk}"' not in html


def test_the_refresh_answers_the_table_alone(pi, study, cases) -> None:
    html = client_for(pi).get(f"/studies/{study.pk}/assignments/?partial=rows").content.decode()
    assert html.lstrip().startswith("<thead>") and "<html" not in html
    assert f'data-assignment="{cases["rater"].pk}"' in html


# --- links -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, shown", [("admin", True), ("pi", True), ("rater", False), ("superuser", True)])
def test_the_study_page_links_admins_and_pis_to_the_page(request, who, shown, study, cases, superuser) -> None:
    html = client_for(request.getfixturevalue(who)).get(f"/studies/{study.pk}/").content.decode()
    assert (f'href="/studies/{study.pk}/assignments/"' in html) is shown
    assert ('data-testid="your-cases-link"' in html) is (who == "rater")


def test_the_home_page_sends_a_rater_to_their_cases(rater, study, cases) -> None:
    html = client_for(rater).get("/").content.decode()
    assert 'data-testid="your-cases"' in html and 'href="/rate/"' in html
    assert "0 of 1 case submitted" in html


def test_the_home_page_has_no_cases_box_for_admins(admin, study, cases) -> None:
    assert 'data-testid="your-cases"' not in client_for(admin).get("/").content.decode()


# --- what a rater's pages never show -----------------------------------------------------------------


@pytest.fixture
def busy_study(study, subject, session, cases, rater3, admin):
    """A second session that only rater2 rates, with progress; rater3 rates nothing."""
    other = Session.objects.create(subject=Subject.objects.create(study=study, code="P99"), label="07")
    Assignment.objects.create(
        session=other, rater=cases["rater2"].rater, status=AssignmentStatus.SUBMITTED, lesion_count=42,
        last_saved_at=timezone.now(), active_seconds=7200,
    )
    return other


def test_a_raters_home_page_counts_only_their_own_sessions(rater, busy_study) -> None:
    html = main_html(client_for(rater).get("/").content.decode())
    row = html[html.index('data-testid="studies"') :]
    assert re.findall(r"<td>(\d+)</td>", row) == ["1", "1"]  # their subject and session, not 2 and 2


def test_a_raters_pages_never_name_another_rater_or_their_progress(rater, busy_study, study) -> None:
    client = client_for(rater)
    for url in ("/", f"/studies/{study.pk}/", "/jobs/"):
        html = main_html(client.get(url).content.decode())
        for secret in ("rater2", "rater3", "P99", "42", "2:00"):
            # whole words only: random ids and tokens may hold the digits
            assert not re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", html), (url, secret)


def test_a_rater_without_cases_is_told_so(rater3, busy_study) -> None:
    html = client_for(rater3).get("/").content.decode()
    assert "No cases are assigned to you yet." in html
    assert "P99" not in html and "P01" not in html


# --- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0:00"), (59.9, "0:00"), (60, "0:01"), (3599, "0:59"), (3600, "1:00"), (3725, "1:02"),
     (36000 + 540, "10:09"), (None, "0:00"), (-5, "0:00"), (float("nan"), "0:00")],
)
def test_it_writes_active_time_as_hours_and_minutes(seconds, text) -> None:
    assert hours_minutes(seconds) == text


def test_it_says_how_long_ago_a_save_was() -> None:
    now = timezone.now()
    assert ago(None) == ""
    assert ago(now - timedelta(seconds=30), now) == "just now"
    assert ago(now + timedelta(seconds=30), now) == "just now"
    assert ago(now - timedelta(minutes=3, seconds=10), now) == "3\xa0minutes ago"
    assert ago(now - timedelta(days=2, hours=5), now) == "2\xa0days ago"


def cell(html: str, assignment: Assignment) -> str:
    start = html.index(f'data-assignment="{assignment.pk}"')
    return html[start : html.index("</td>", start)]
