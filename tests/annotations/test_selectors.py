"""Selectors of the rater workspace: rateability, the case's panels, progress and the rater's queue."""

from __future__ import annotations

import pytest

from qsmreview.annotations.selectors import case_panels, next_case, progress_rows, rater_queue, session_rateability
from qsmreview.annotations.services import assignment_create, assignment_submit, revision_create
from qsmreview.studies.models import Series, Session
from tests.annotations.conftest import mask_bytes
from tests.api.world import make_series

pytestmark = pytest.mark.django_db


def series(session, kind, *, label="", space="t2star", **kwargs) -> Series:
    made = make_series(session, kind, label=label, **kwargs)
    if space != "t2star":
        Series.objects.filter(pk=made.pk).update(space=space)
        made.refresh_from_db()
    return made


def test_a_session_without_a_t2star_magnitude_is_not_rateable(session) -> None:
    assert session_rateability(session) == (False, "the session has no T2* magnitude yet: upload it")


def test_a_session_with_a_magnitude_alone_is_rateable(session, mag) -> None:
    assert session_rateability(session) == (True, "")


def test_a_native_flair_makes_it_unrateable_until_it_is_on_the_t2star_grid(session, mag) -> None:
    series(session, "flair", space="native")
    assert session_rateability(session) == (False, "FLAIR is not on the T2* grid yet: run coregistration")

    series(session, "flair")  # the coregistered version (same label, space t2star)

    assert session_rateability(session) == (True, "")


def test_it_names_the_label_of_a_native_t1_without_a_coregistered_version(session, mag) -> None:
    series(session, "t1_wmn", label="inv2", space="native")
    series(session, "t1_wmn", label="other")  # another label on the grid does not count

    assert session_rateability(session) == (
        False,
        "T1 WM-nulled 'inv2' is not on the T2* grid yet: run coregistration",
    )


def test_an_old_native_version_no_longer_current_does_not_count(session, mag) -> None:
    series(session, "flair", space="native", is_current=False)

    assert session_rateability(session) == (True, "")


def test_it_lists_the_panels_in_order_and_leaves_out_what_the_user_may_not_see(
    session, mag, rater, admin
) -> None:
    assignment_create(by=admin, session=session, rater=rater)
    csfn = series(session, "t1_csfn")
    flair = series(session, "flair", blinded=True)
    wmn = series(session, "t1_wmn")
    series(session, "flair", space="native", label="raw")  # not on the grid
    series(session, "qsm")  # not a panel (and blinded)
    series(session, "t2star_mag", label="old", is_current=False)  # not current

    assert case_panels(session, admin) == [mag, flair, wmn, csfn]
    assert case_panels(session, rater) == [mag, wmn, csfn]


def test_a_rater_of_another_session_gets_no_panels(session, mag, rater2) -> None:
    assert case_panels(session, rater2) == []


def test_it_reports_progress_per_assignment_with_rateability(session, mag, rater, rater2, admin) -> None:
    second = Session.objects.create(subject=session.subject, label="02")  # no magnitude yet
    for s in (session, second):
        for r in (rater2, rater):
            assignment_create(by=admin, session=s, rater=r)
    case = rater.assignments.get(session=session)
    revision_create(by=rater, assignment=case, mask_bytes=mask_bytes((1, 1, 1), (5, 5, 5)), parent=None, lesions=[], active_seconds=12)

    rows = progress_rows(session.subject.study)

    assert [(r.assignment.session.label, r.assignment.rater.username, r.status, r.lesion_count, r.rateable) for r in rows] == [
        ("01", "rater1", "in_progress", 2, True),
        ("01", "rater2", "not_started", 0, True),
        ("02", "rater1", "not_started", 0, False),
        ("02", "rater2", "not_started", 0, False),
    ]
    assert rows[0].active_seconds == 12.0 and rows[0].last_saved_at is not None
    assert rows[2].reason == "the session has no T2* magnitude yet: upload it"


def test_the_next_case_is_the_first_unsubmitted_one(session, mag, rater, admin) -> None:
    second = Session.objects.create(subject=session.subject, label="02")
    first = assignment_create(by=admin, session=session, rater=rater)
    later = assignment_create(by=admin, session=second, rater=rater)
    assert next_case(rater) == first

    revision = revision_create(by=rater, assignment=first, mask_bytes=mask_bytes((1, 1, 1)), parent=None, lesions=[])
    assignment_submit(by=rater, assignment=first, revision=revision)

    assert next_case(rater) == later
    assert [a.pk for a in rater_queue(rater)] == [later.pk, first.pk]
    assert next_case(admin) is None
