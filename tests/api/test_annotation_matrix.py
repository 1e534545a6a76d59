"""The access-control matrix of the annotation routes: role x route x whose case.

Three targets: ``own`` is rater 1's case (rater 1 = the ``rater`` role), ``theirs`` is rater 2's
case of the same session, ``other`` is a rater's case in the other study. Each case has one saved
revision. ``rater3`` is a rater of the own study with no case at all. A cell is ``own/theirs/other``
(one number when all agree). A refused request must leave the database unchanged, and a rater must
get for another rater's case exactly what they get for an id that does not exist.

To add a route: a ``Route`` in ``ROUTES``, a row in ``STATUS_MATRIX``, and its URL name in
``COVERED`` (the guard fails on an annotation route with no row).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from qsmreview.annotations.models import Assignment, AssignmentEvent, Revision
from qsmreview.annotations.services import assignment_submit, revision_create
from tests.annotations.conftest import mask_bytes, world_mm
from tests.api.world import World, as_bytes, client_for, db_fingerprint
from tests.fixtures.cast import make_user

ROLES = ("anonymous", "outsider", "rater", "rater2", "rater3", "pi", "admin", "other_admin", "superuser")
TARGETS = ("own", "theirs", "other")


@dataclass
class Case:
    assignment: Assignment
    revision: Revision
    #: a rater of the case's study with no case yet (for the assign route)
    free_rater: Any


@dataclass
class AWorld:
    world: World
    users: dict[str, Any]
    cases: dict[str, Case]

    def client(self, role: str):
        return client_for(self.users[role])


def _save(rater, assignment: Assignment, voxel: tuple[int, int, int]) -> Revision:
    return revision_create(
        by=rater, assignment=assignment, mask_bytes=mask_bytes(voxel), parent=None,
        lesions=[{"number": 1, "anchor_mm": world_mm(*voxel), "vote": "wm", "confidence": 3, "note": "secret note"}],
    )


@pytest.fixture
def aworld(world: World, rater2, rater3) -> AWorld:
    from qsmreview.studies.models import Membership

    own_a = Assignment.objects.get(session=world.own.session, rater=world.users["rater"])
    theirs_a = Assignment.objects.create(session=world.own.session, rater=rater2)
    other_a = Assignment.objects.get(session=world.other.session, rater=world.other.member)
    other_free = make_user("other_free_rater")
    Membership.objects.create(study=world.other.study, user=other_free, role="rater")
    cases = {
        "own": Case(own_a, _save(world.users["rater"], own_a, (3, 4, 2)), rater3),
        "theirs": Case(theirs_a, _save(rater2, theirs_a, (5, 6, 3)), rater3),
        "other": Case(other_a, _save(world.other.member, other_a, (7, 8, 4)), other_free),
    }
    users = {**{r: world.users.get(r) for r in ROLES if r in world.users}, "rater2": rater2, "rater3": rater3}
    users["anonymous"] = None
    return AWorld(world, users, cases)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: Callable[[AWorld, str], str]
    body: Callable[[AWorld, str], Any] | None = None
    multipart: bool = False
    headers: Callable[[AWorld, str], dict[str, str]] = lambda w, t: {}
    #: run before the request (and before the database fingerprint)
    setup: Callable[[AWorld, str], None] | None = None


def _a(w: AWorld, t: str) -> int:
    return w.cases[t].assignment.pk


def _r(w: AWorld, t: str) -> int:
    return w.cases[t].revision.pk


def _study(w: AWorld, t: str) -> int:
    return (w.world.other if t == "other" else w.world.own).study.pk


def _submit(w: AWorld, t: str) -> None:
    case = w.cases[t]
    assignment_submit(by=case.assignment.rater, assignment=case.assignment, revision=case.revision)


def _upload(w: AWorld, t: str) -> dict[str, Any]:
    return {
        "mask": SimpleUploadedFile("drawing.nii.gz", mask_bytes((2, 2, 2), (3, 4, 2))),
        "parent": str(_r(w, t)),
        "lesions": "[]",
        "active_seconds": "5",
    }


ROUTES = {
    r.name: r
    for r in [
        Route("assignment.retrieve", "get", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/"),
        Route("assignment.unassign", "delete", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/",
              lambda w, t: {"force": True, "reason": "moved to another rater"}),
        Route("assignment.reopen", "post", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/reopen/",
              lambda w, t: {"reason": "missed a lesion"}, setup=_submit),
        Route("assignment.submit", "post", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/submit/",
              lambda w, t: {"revision": _r(w, t)}),
        Route("assignment.events", "get", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/events/"),
        Route("assignment.revisions", "get", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/revisions/"),
        Route("revision.create", "post", lambda w, t: f"/api/v1/assignments/{_a(w, t)}/revisions/",
              _upload, multipart=True),
        Route("revision.retrieve", "get", lambda w, t: f"/api/v1/revisions/{_r(w, t)}/"),
        Route("revision.mask", "get", lambda w, t: f"/api/v1/revisions/{_r(w, t)}/mask/"),
        Route("revision.mask_304", "get", lambda w, t: f"/api/v1/revisions/{_r(w, t)}/mask/",
              headers=lambda w, t: {"HTTP_IF_NONE_MATCH": f'"{w.cases[t].revision.sha256}"'}),
        Route("revision.restore", "post", lambda w, t: f"/api/v1/revisions/{_r(w, t)}/restore/",
              lambda w, t: {"parent": _r(w, t)}),
        Route("study.assign", "post", lambda w, t: f"/api/v1/studies/{_study(w, t)}/assignments/",
              lambda w, t: {"raters": [w.cases[t].free_rater.pk]}),
        Route("study.progress", "get", lambda w, t: f"/api/v1/studies/{_study(w, t)}/progress/"),
    ]
}

# rater = rater 1 (owns "own"), rater2 owns "theirs", rater3 has no case. The study routes' targets
# own and theirs are the same (own) study. A rater reaches nothing of another rater's case (404, as
# for an id that does not exist); admins and PIs read every case of their study; only the case's
# rater writes to it (403 for the admin and PI); only admins manage assignments.
STATUS_MATRIX = """
route                anonymous outsider rater       rater2      rater3 pi          admin       other_admin superuser
assignment.retrieve  401       404      200/404/404 404/200/404 404    200/200/404 200/200/404 404/404/200 200
assignment.unassign  401       404      403/404/404 404/403/404 404    403/403/404 204/204/404 404/404/204 204
assignment.reopen    401       404      403/404/404 404/403/404 404    403/403/404 200/200/404 404/404/200 200
assignment.submit    401       404      200/404/404 404/200/404 404    403/403/404 403/403/404 404/404/403 403
assignment.events    401       404      403/404/404 404/403/404 404    200/200/404 200/200/404 404/404/200 200
assignment.revisions 401       404      200/404/404 404/200/404 404    200/200/404 200/200/404 404/404/200 200
revision.create      401       404      201/404/404 404/201/404 404    403/403/404 403/403/404 404/404/403 403
revision.retrieve    401       404      200/404/404 404/200/404 404    200/200/404 200/200/404 404/404/200 200
revision.mask        401       404      200/404/404 404/200/404 404    200/200/404 200/200/404 404/404/200 200
revision.mask_304    401       404      304/404/404 404/304/404 404    304/304/404 304/304/404 404/404/304 304
revision.restore     401       404      201/404/404 404/201/404 404    403/403/404 403/403/404 404/404/403 403
study.assign         401       404      403/403/404 403/403/404 403/403/404 403/403/404 201/201/404 404/404/201 201
study.progress       401       404      403/403/404 403/403/404 403/403/404 200/200/404 200/200/404 404/404/200 200
"""


@dataclass(frozen=True)
class Cell:
    route: str
    role: str
    target: str
    status: int
    id: str


def _cells() -> list[Cell]:
    lines = [line.split() for line in STATUS_MATRIX.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == ROLES
    assert [r[0] for r in rows] == list(ROUTES), "every route needs exactly one row, in order"
    cells = []
    for name, *row in rows:
        assert len(row) == len(ROLES), name
        for role, cell in zip(ROLES, row):
            parts = cell.split("/")
            statuses = parts if len(parts) == 3 else parts * 3
            for target, status in zip(TARGETS, statuses):
                cells.append(Cell(name, role, target, int(status), f"{name}-{role}-{target}-{status}"))
    return cells


CELLS = _cells()


def _fingerprint() -> tuple:
    return (
        db_fingerprint(),
        list(Assignment.objects.order_by("pk").values()),
        list(Revision.objects.order_by("pk").values("pk", "assignment_id", "number", "kind", "sha256")),
        list(AssignmentEvent.objects.order_by("pk").values("pk", "action", "reason")),
    )


def send(w: AWorld, route: Route, role: str, target: str, **extra):
    kwargs: dict[str, Any] = {**route.headers(w, target), **extra}
    if route.body is not None:
        kwargs["data"] = route.body(w, target)
        kwargs["format"] = "multipart" if route.multipart else "json"
    return getattr(w.client(role), route.method)(route.path(w, target), **kwargs)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_it_answers_the_annotation_matrix(aworld: AWorld, cell: Cell):
    route = ROUTES[cell.route]
    if route.setup:
        route.setup(aworld, cell.target)
    before = _fingerprint()

    response = send(aworld, route, cell.role, cell.target)

    body = as_bytes(response)[:300]
    assert response.status_code == cell.status, body
    if cell.status >= 400:
        assert _fingerprint() == before, "a refused request changed the database"
        assert response.json()["code"] in ("not_authenticated", "forbidden", "not_found"), body


#: (role, what it may not know of): another rater's case, the other study's case
_HIDDEN = {"rater": ("theirs", "other"), "rater2": ("own", "other"), "rater3": ("own", "theirs", "other")}
_ID_ROUTES = [n for n in ROUTES if n.startswith(("assignment.", "revision."))]


@pytest.mark.parametrize("role", list(_HIDDEN))
@pytest.mark.parametrize("name", _ID_ROUTES)
def test_it_answers_a_rater_for_another_raters_case_exactly_as_for_no_case(aworld: AWorld, name: str, role: str):
    """Same status and body as an id that does not exist: the answer tells nothing."""
    route = ROUTES[name]
    for target in _HIDDEN[role]:
        if route.setup:
            route.setup(aworld, target)
        hidden = send(aworld, route, role, target)
        absent_path = re.sub(r"/(assignments|revisions)/\d+/", r"/\1/999999999999/", route.path(aworld, target))
        absent = getattr(aworld.client(role), route.method)(
            absent_path, **({"data": route.body(aworld, target), "format": "multipart" if route.multipart else "json"}
                            if route.body else {}), **route.headers(aworld, target)
        )
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()


def _secrets_of(w: AWorld, target: str) -> set[str]:
    case = w.cases[target]
    return {case.revision.sha256, case.assignment.rater.username, str(case.assignment.pk), str(case.revision.pk)}


@pytest.mark.parametrize("mode", ["json", "html", "api"])
@pytest.mark.parametrize("role", list(_HIDDEN))
def test_it_shows_a_rater_nothing_of_another_raters_case_on_any_readable_route(aworld: AWorld, role: str, mode: str):
    """Every GET route and list, as JSON, as a browser (Accept: text/html) and as ?format=api."""
    secrets = set().union(*(_secrets_of(aworld, t) for t in _HIDDEN[role]))
    client = aworld.client(role)
    own = {"rater": "own", "rater2": "theirs"}.get(role)
    paths = ["/api/v1/assignments/", f"/api/v1/studies/{aworld.world.own.study.pk}/progress/"]
    if own:
        paths += [ROUTES[n].path(aworld, own) for n in ROUTES if ROUTES[n].method == "get" and n.startswith(("assignment.", "revision."))]
    for path in paths:
        headers = {"HTTP_ACCEPT": "text/html"} if mode == "html" else {}
        url = f"{path}?format=api" if mode == "api" else path
        response = client.get(url, **headers)
        text = as_bytes(response).decode("utf-8", "replace")
        leaked = sorted(s for s in secrets if re.search(rf"(?<![0-9a-f]){re.escape(s)}(?![0-9a-f])", text))
        assert not leaked, f"{path} as {role} ({mode}) shows {leaked}"


LIST_EXPECTED = {
    "anonymous": 401, "outsider": set(), "rater": {"own"}, "rater2": {"theirs"}, "rater3": set(),
    "pi": {"own", "theirs"}, "admin": {"own", "theirs"}, "other_admin": {"other"},
    "superuser": {"own", "theirs", "other"},
}


@pytest.mark.parametrize("role", ROLES)
def test_it_lists_exactly_the_cases_the_role_may_see(aworld: AWorld, role: str):
    response = aworld.client(role).get("/api/v1/assignments/")

    expected = LIST_EXPECTED[role]
    if isinstance(expected, int):
        assert response.status_code == expected
        return
    labels = {case.assignment.pk: name for name, case in aworld.cases.items()}
    assert {labels[item["id"]] for item in response.json()["results"]} == expected


COVERED = {
    "api-assignment-list": {"list"},
    "api-study-assignments": {"study.assign"},
    "api-study-progress": {"study.progress"},
    "api-assignment-detail": {"assignment.retrieve", "assignment.unassign"},
    "api-assignment-reopen": {"assignment.reopen"},
    "api-assignment-submit": {"assignment.submit"},
    "api-assignment-events": {"assignment.events"},
    "api-assignment-revisions": {"assignment.revisions", "revision.create"},
    "api-revision-detail": {"revision.retrieve"},
    "api-revision-mask": {"revision.mask", "revision.mask_304"},
    "api-revision-restore": {"revision.restore"},
}


def test_it_covers_every_annotation_route():
    from qsmreview.annotations.api.urls import urlpatterns

    assert {p.name for p in urlpatterns} == set(COVERED)
    for rows in COVERED.values():
        assert rows <= set(ROUTES) | {"list"}
