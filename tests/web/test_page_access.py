"""Who may open which page: every role x own/other study x blinded/non-blinded series, as a table.

Cells are ``own/other`` statuses (one number when both agree). 302 is the redirect to the login
page. A series a user may not see answers 404 exactly like a missing one; so does the upload page
for everyone but the study's admins (raters and PIs see the study, not its upload page), and the
assignments page for everyone but its admins and PI. The rater rates the own study's session.

To add a page: a row in ``PAGE_MATRIX`` and its URL in ``PAGES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client

from qsmreview.studies.models import Series
from tests.web.test_pages import make_series

ROLES = ("anonymous", "outsider", "rater", "pi", "admin", "other_admin", "superuser")

PAGE_MATRIX = """
page                 anonymous outsider rater   pi      admin   other_admin superuser
study                302       404      200/404 200/404 200/404 404/200     200
series_view          302       404      200/404 200/404 200/404 404/200     200
series_view_blinded  302       404      404     200/404 200/404 404/200     200
series_view_missing  302       404      404     404     404     404         404
upload               302       404      404     404     200/404 404/200     200
assignments          302       404      404     200/404 200/404 404/200     200
consensus            302       404      404     200/404 200/404 404/200     200
consensus_no_run     302       404      404     200/404 200/404 404/200     200
consensus_qc         302       404      404     200/404 200/404 404/200     200
qc_viewer            302       404      404     200/404 200/404 404/200     200
qc_viewer_no_run     302       404      404     200/404 200/404 404/200     200
study_consensus      302       404      404     200/404 200/404 404/200     200
reports              302       404      404     200/404 200/404 404/200     200
reports_import       302       404      404     404     200/404 404/200     200
export_bids          302       404      404     200/404 200/404 404/200     200
exports              302       404      404     200/404 200/404 404/200     200
export_download      302       404      404     200/404 200/404 404/200     200
"""


@dataclass
class Side:
    study_id: int
    magnitude: Series
    qsm: Series
    session_id: int = 0
    #: a session of the study with no consensus run
    bare_session_id: int = 0
    #: a prepared export of the study
    export_id: int = 0


@dataclass
class World:
    own: Side
    other: Side
    users: dict[str, object]


PAGES: dict[str, Callable[[Side], str]] = {
    "study": lambda s: f"/studies/{s.study_id}/",
    "series_view": lambda s: f"/series/{s.magnitude.pk}/view/",
    "series_view_blinded": lambda s: f"/series/{s.qsm.pk}/view/",
    "series_view_missing": lambda s: "/series/999999/view/",
    "upload": lambda s: f"/studies/{s.study_id}/upload/",
    "assignments": lambda s: f"/studies/{s.study_id}/assignments/",
    "consensus": lambda s: f"/sessions/{s.session_id}/consensus/",
    "consensus_no_run": lambda s: f"/sessions/{s.bare_session_id}/consensus/",
    "consensus_qc": lambda s: f"/sessions/{s.session_id}/consensus/qc/",
    "qc_viewer": lambda s: f"/sessions/{s.session_id}/consensus/qc/viewer/",
    "qc_viewer_no_run": lambda s: f"/sessions/{s.bare_session_id}/consensus/qc/viewer/",
    "study_consensus": lambda s: f"/studies/{s.study_id}/consensus/",
    "reports": lambda s: f"/studies/{s.study_id}/reports/",
    "reports_import": lambda s: f"/studies/{s.study_id}/reports/import/",
    "export_bids": lambda s: f"/studies/{s.study_id}/export/bids.zip",
    "exports": lambda s: f"/studies/{s.study_id}/exports/",
    "export_download": lambda s: f"/exports/{s.export_id}/download/",
}


def _cases() -> list[tuple[str, str, str, int]]:
    lines = [line.split() for line in PAGE_MATRIX.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == ROLES
    assert [r[0] for r in rows] == list(PAGES)
    cases = []
    for page, *cells in rows:
        for role, cell in zip(ROLES, cells):
            own, _, other = cell.partition("/")
            cases += [(page, role, "own", int(own)), (page, role, "other", int(other or own))]
    return cases


CASES = _cases()


@pytest.fixture
def world(study, other_study, session, other_session, admin, rater, pi, other_admin, outsider, superuser,
          assignment, media_root) -> World:
    from qsmreview.studies.models import Session
    from tests.api.world import make_series as stored_series
    from tests.api.world import make_export
    from tests.consensus.factories import make_consensus_run

    def side(study_, session_) -> Side:
        make_consensus_run(session_)
        bare = Session.objects.create(subject=session_.subject, label="bare")
        made = Side(
            study_.pk,
            make_series(session_, "t2star_mag", blinded=False),
            make_series(session_, "qsm", blinded=True),
            session_.pk,
            bare.pk,
        )
        # a stored QSM on the consensus grid, newer than the placeholder rows above (which have no
        # file): the one the export writes
        stored_series(session_, "qsm", label="stored")
        made.export_id = make_export(study_).pk
        return made

    users = {"anonymous": None, "outsider": outsider, "rater": rater, "pi": pi, "admin": admin,
             "other_admin": other_admin, "superuser": superuser}
    return World(side(study, session), side(other_study, other_session), users)


@pytest.mark.parametrize("page, role, target, status", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_it_answers_the_page_matrix(world: World, page: str, role: str, target: str, status: int) -> None:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    url = PAGES[page](world.own if target == "own" else world.other)
    response = client.get(url)
    assert response.status_code == status, url
    if status == 302:
        assert response["Location"].startswith("/accounts/login/?next=")


def test_it_covers_every_page_route() -> None:
    from qsmreview.studies.urls import urlpatterns

    covered = {"series-view": {"series_view", "series_view_blinded"}, "study-upload": {"upload"}}
    assert {p.name for p in urlpatterns} == set(covered)


def test_it_covers_every_export_page_route() -> None:
    from qsmreview.exports.urls import urlpatterns

    covered = {"study-export-bids": {"export_bids"}, "study-exports": {"exports"}, "export-download": {"export_download"}}
    assert {p.name for p in urlpatterns} == set(covered)
    for pages in covered.values():
        assert pages <= set(PAGES)


def test_it_covers_every_consensus_page_route() -> None:
    from qsmreview.consensus.urls import urlpatterns

    covered = {
        "session-consensus": {"consensus", "consensus_no_run"},
        "session-consensus-qc": {"consensus_qc"},
        "session-consensus-qc-viewer": {"qc_viewer", "qc_viewer_no_run"},
        "study-consensus": {"study_consensus"},
    }
    assert {p.name for p in urlpatterns} == set(covered)
    for pages in covered.values():
        assert pages <= set(PAGES)


def test_it_covers_every_reports_page_route() -> None:
    from qsmreview.reports.urls import urlpatterns

    covered = {"study-reports": {"reports"}, "study-reports-import": {"reports_import"}}
    assert {p.name for p in urlpatterns} == set(covered)
    for pages in covered.values():
        assert pages <= set(PAGES)
