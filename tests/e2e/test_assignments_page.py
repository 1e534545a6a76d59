"""The assignments and progress page in Chromium: an admin assigns every session to three raters,
unassigns one case, forces the unassignment of a case with saved work (with a reason), and reopens
a submitted case; every change goes through the REST API and shows in the table without a reload.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from qsmreview.annotations.models import Assignment, AssignmentEvent, AssignmentStatus
from qsmreview.annotations.services import assignment_create, assignment_submit, revision_create
from qsmreview.studies.models import Session, Subject
from tests.annotations.conftest import mask_bytes, world_mm
from tests.api.world import make_series

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sessions(session, media_root) -> list[Session]:
    """Two sessions (P01/01 and P02/01), each with a stored T2* magnitude to draw on."""
    second = Session.objects.create(subject=Subject.objects.create(study=session.subject.study, code="P02"), label="01")
    for s in (session, second):
        make_series(s, "t2star_mag")
    return [session, second]


def cell(page, assignment_or_session, rater):
    session_id = getattr(assignment_or_session, "session_id", None) or assignment_or_session.pk
    return page.locator(f'td.cell[data-key="{session_id}-{rater.pk}"]')


def saved_case(admin, rater, session) -> Assignment:
    """A case of ``rater`` with one saved revision (one lesion voxel)."""
    assignment = assignment_create(by=admin, session=session, rater=rater)
    revision_create(
        by=rater, assignment=assignment, mask_bytes=mask_bytes((3, 4, 2)), parent=None,
        lesions=[{"number": 1, "anchor_mm": world_mm(3, 4, 2), "vote": "wm", "confidence": 3, "note": ""}],
        active_seconds=125,
    )
    return Assignment.objects.get(pk=assignment.pk)


def open_page(logged_in_page, live_server, admin, study):
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/assignments/")
    page.evaluate("window.__sameDocument = true")
    return page


def test_an_admin_assigns_every_session_to_three_raters_and_unassigns_one(
    logged_in_page, live_server, admin, study, sessions, rater, rater2, rater3, screens_dir
) -> None:
    page = open_page(logged_in_page, live_server, admin, study)
    raters = [rater, rater2, rater3]
    assert page.locator('td.cell[data-status="none"]').count() == 6

    for r in raters:
        page.check(f'[data-testid="bulk-rater-{r.username}"]')
    page.click('[data-testid="assign-all"]')
    expect(page.locator('[data-testid="assign-status"]')).to_contain_text("Assigned every session to 3 raters (6 assignments).")
    page.wait_for_function("document.querySelectorAll('td.cell[data-status=\"not_started\"]').length === 6")
    for s in sessions:
        for r in raters:
            assert cell(page, s, r).locator('[data-testid="status"]').inner_text() == "not started"
    assert Assignment.objects.filter(active=True).count() == 6

    target = cell(page, sessions[1], rater2)
    target.locator('[data-testid="unassign"]').click()
    dialog = page.locator('[data-testid="reason-dialog"]')
    expect(dialog).to_contain_text("Unassign rater2 on P02 session 01?")
    page.click('[data-testid="confirm"]')
    page.wait_for_function(
        "key => document.querySelector(`td.cell[data-key=\"${key}\"]`).dataset.status === 'none'",
        arg=f"{sessions[1].pk}-{rater2.pk}",
    )
    assert target.locator('[data-testid="status"]').inner_text() == "not assigned"
    expect(page.locator('[data-testid="assign-status"]')).to_contain_text("Unassigned rater2 on P02 session 01.")
    assert not Assignment.objects.get(session=sessions[1], rater=rater2).active

    # A refresh keeps what the admin is doing: the ticked box and the open history stay.
    target.locator('[data-testid="pick"]').check()
    kept = cell(page, sessions[0], rater)
    kept.locator("details.events summary").click()
    kept.locator('details.events li[data-action="assigned"]').wait_for()
    before = page.locator("#progress").get_attribute("data-refreshed")
    page.evaluate("document.getElementById('progress').dispatchEvent(new Event('refresh-now'))")
    page.wait_for_function("before => document.getElementById('progress').dataset.refreshed !== before", arg=before)
    assert target.locator('[data-testid="pick"]').is_checked()
    assert kept.locator("details.events").get_attribute("open") is not None
    assert kept.locator('details.events li[data-action="assigned"]').count() == 1

    # One case at a time: the ticked cell is assigned again.
    page.click('[data-testid="assign-ticked"]')
    expect(target.locator('[data-testid="status"]')).to_have_text("not started")
    expect(page.locator('[data-testid="assign-status"]')).to_contain_text("Assigned 1 case.")
    assert Assignment.objects.get(session=sessions[1], rater=rater2).active
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(screens_dir / "assignments.png"), full_page=True)


def test_unassigning_saved_work_is_refused_then_forced_with_a_reason(
    logged_in_page, live_server, admin, study, sessions, rater
) -> None:
    case = saved_case(admin, rater, sessions[0])
    page = open_page(logged_in_page, live_server, admin, study)
    mine = cell(page, case, rater)
    assert mine.locator('[data-testid="status"]').inner_text() == "in progress"
    assert "1 lesion" in mine.inner_text() and "0:02" in mine.inner_text()

    mine.locator('[data-testid="unassign"]').click()
    page.click('[data-testid="confirm"]')  # no reason: the API refuses, the dialog asks to force
    dialog = page.locator('[data-testid="reason-dialog"]')
    expect(dialog.locator(".title")).to_have_text("Force unassign rater1 on P01 session 01?")
    expect(dialog.locator('[data-testid="dialog-text"]')).to_contain_text("rater1 has saved work on this case (1 revision)")
    assert Assignment.objects.get(pk=case.pk).active

    page.click('[data-testid="confirm"]')  # an empty reason: the browser keeps the dialog open
    assert dialog.is_visible()
    page.fill('[data-testid="reason"]', "rater left the study")
    page.click('[data-testid="confirm"]')
    page.wait_for_function(
        "key => document.querySelector(`td.cell[data-key=\"${key}\"]`).dataset.status === 'none'",
        arg=f"{sessions[0].pk}-{rater.pk}",
    )
    row = Assignment.objects.get(pk=case.pk)
    assert not row.active and row.revisions.count() == 1
    event = AssignmentEvent.objects.get(assignment=case, action="unassigned")
    assert (event.by, event.reason) == (admin, "rater left the study")


def test_an_admin_reopens_a_submitted_case_and_reads_its_history(
    logged_in_page, live_server, admin, study, sessions, rater
) -> None:
    case = saved_case(admin, rater, sessions[0])
    assignment_submit(by=rater, assignment=case, revision=case.latest_revision)
    page = open_page(logged_in_page, live_server, admin, study)
    mine = cell(page, case, rater)
    assert mine.locator('[data-testid="status"]').inner_text() == "submitted"

    mine.locator('[data-testid="reopen"]').click()
    page.click('[data-testid="confirm"]')  # the reason is required: nothing is sent
    assert page.locator('[data-testid="reason-dialog"]').is_visible()
    page.fill('[data-testid="reason"]', "lesion 1 needs another look")
    page.click('[data-testid="confirm"]')
    page.wait_for_function(
        "id => document.querySelector(`td.cell[data-assignment=\"${id}\"]`).dataset.status === 'in_progress'",
        arg=case.pk,
    )
    assert Assignment.objects.get(pk=case.pk).status == AssignmentStatus.IN_PROGRESS
    assert mine.locator('[data-testid="reopen"]').count() == 0

    mine.locator("details.events summary").click()
    history = mine.locator("details.events ol")
    history.locator('li[data-action="reopened"]').wait_for()
    actions = history.locator("li").evaluate_all("items => items.map(li => li.dataset.action)")
    assert actions == ["assigned", "submitted", "reopened"]
    reopened = history.locator('li[data-action="reopened"]').inner_text()
    assert "admin" in reopened and "lesion 1 needs another look" in reopened
