"""The access-control matrix of the REST API: every role x every route x own/other study.

The tables below are the specification. ``STATUS_MATRIX`` gives, per route (a row) and role (a
column), the status for an object of the caller's own study and of the other study as
``own/other`` (one number when both agree, or when the route has no target object). A refused
write must leave the database unchanged. ``LIST_MATRIX`` gives, per list route and role, exactly
which objects the list shows.

To extend it (e.g. annotations: "a rater never sees another rater's data"), add a ``Route`` with
its URL and body, a row per table, and if needed a role column backed by a user in ``world``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.world import ROLES, World, as_bytes, db_fingerprint, nifti_bytes, upload_body

Target = str  # "own" | "other" | "-" (routes without a target object)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: Callable[[World, Target], str]
    body: Callable[[World, Target], Any] | None = None
    headers: Callable[[World, Target], dict[str, str]] = lambda w, t: {}
    multipart: bool = False
    #: a raw body of this media type (the body callable returns bytes)
    content_type: str | None = None
    #: the route has no target object (e.g. creating a study)
    untargeted: bool = False


def _series(kind: str) -> Callable[[World, Target], Any]:
    return lambda w, t: w.side(t).series[kind]


_mag, _qsm = _series("t2star_mag"), _series("qsm")


def _run(w: World, t: Target) -> Any:
    return w.side(t).consensus


def _lesion_csv() -> Any:
    """A lesion table CSV of a subject measured elsewhere (no clash with the consensus lesions)."""
    from tests.api.world import uploaded_file

    text = "subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nEXT1,1,wm,wm,0.01\n"
    return uploaded_file("lesions.csv", text.encode())


def _mask_b64() -> str:
    """A drawn mask on the world's grid (tests.fixtures.nifti) with voxel (0, 0, 0) set, base64."""
    import base64
    import gzip

    import nibabel as nib
    import numpy as np

    from tests.fixtures.nifti import AFFINE, SHAPE

    data = np.zeros(SHAPE, np.uint8)
    data[0, 0, 0] = 1
    return base64.b64encode(gzip.compress(nib.Nifti1Image(data, AFFINE).to_bytes(), mtime=0)).decode()


def bids_zip_body() -> bytes:
    """A BIDS dataset as a zip: one T2* magnitude of a new subject (the BIDS-import route)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("sub-BIDS/anat/sub-BIDS_T2starw.nii.gz", nifti_bytes(seed=7))
    return buf.getvalue()


def _if_none_match(get: Callable[[World, Target], Any]) -> Callable[[World, Target], dict]:
    return lambda w, t: {"HTTP_IF_NONE_MATCH": f'"{get(w, t).sha256}"'}


ROUTES = {
    r.name: r
    for r in [
        Route("study.create", "post", lambda w, t: "/api/v1/studies/",
              lambda w, t: {"name": "New study"}, untargeted=True),
        Route("study.retrieve", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/"),
        Route("study.update", "patch", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/",
              lambda w, t: {"description": "changed"}),
        Route("member.list", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/members/"),
        Route("member.set", "post", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/members/",
              lambda w, t: {"username": "newbie", "role": "rater"}),
        Route("member.remove", "delete",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/members/{w.side(t).member.pk}/"),
        Route("study.bids_import", "post", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/bids-import/",
              lambda w, t: bids_zip_body(), content_type="application/zip"),
        Route("subject.create", "post", lambda w, t: "/api/v1/subjects/",
              lambda w, t: {"study": w.side(t).study.pk, "code": "NEW"}),
        Route("subject.retrieve", "get", lambda w, t: f"/api/v1/subjects/{w.side(t).subject.pk}/"),
        Route("subject.update", "patch", lambda w, t: f"/api/v1/subjects/{w.side(t).subject.pk}/",
              lambda w, t: {"notes": "changed"}),
        Route("session.create", "post", lambda w, t: "/api/v1/sessions/",
              lambda w, t: {"subject": w.side(t).subject.pk, "label": "02"}),
        Route("session.retrieve", "get", lambda w, t: f"/api/v1/sessions/{w.side(t).session.pk}/"),
        Route("session.update", "patch", lambda w, t: f"/api/v1/sessions/{w.side(t).session.pk}/",
              lambda w, t: {"scanner": "changed"}),
        Route("series.retrieve", "get", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/"),
        Route("series.retrieve_blinded", "get", lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/"),
        Route("series.update", "patch", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/",
              lambda w, t: {"blinded": True}),
        Route("series.update_blinded", "patch", lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/",
              lambda w, t: {"blinded": False}),
        Route("series.volume", "get", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/volume/"),
        Route("series.volume_blinded", "get",
              lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/volume/"),
        Route("series.volume_304", "get", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/volume/",
              headers=_if_none_match(_mag)),
        Route("series.volume_304_blinded", "get",
              lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/volume/", headers=_if_none_match(_qsm)),
        Route("series.volume_head", "head", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/volume/"),
        Route("series.volume_head_blinded", "head",
              lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/volume/"),
        Route("series.display", "get", lambda w, t: f"/api/v1/series/{_mag(w, t).pk}/display/"),
        Route("series.display_blinded", "get",
              lambda w, t: f"/api/v1/series/{_qsm(w, t).pk}/display/"),
        Route("series.upload", "post", lambda w, t: "/api/v1/series/",
              lambda w, t: upload_body(w.side(t).session), multipart=True),
        # the session in the URL: checked before the body is read (qsmreview.api.upload_gate)
        Route("series.upload_to_url", "post",
              lambda w, t: f"/api/v1/series/?session={w.side(t).session.pk}",
              lambda w, t: {k: v for k, v in upload_body(w.side(t).session).items() if k != "session"},
              multipart=True),
        Route("job.retrieve", "get", lambda w, t: f"/api/v1/jobs/{w.side(t).jobs['queued'].pk}/"),
        Route("job.cancel", "post", lambda w, t: f"/api/v1/jobs/{w.side(t).jobs['queued'].pk}/cancel/"),
        Route("job.retry", "post", lambda w, t: f"/api/v1/jobs/{w.side(t).jobs['failed'].pk}/retry/"),
        Route("job.submit", "post", lambda w, t: "/api/v1/jobs/",
              lambda w, t: {"kind": "selftest", "study": w.side(t).study.pk, "parameters": {"steps": 1}}),
        Route("processing.overview", "get",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/processing/"),
        Route("processing.session_run", "post",
              lambda w, t: f"/api/v1/sessions/{w.side(t).session.pk}/processing/",
              lambda w, t: {"kind": "brain_mask"}),
        Route("processing.study_run", "post",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/processing/",
              lambda w, t: {"kind": "brain_mask"}),
        # consensus: the study's admins and PI read, admins write, raters and outsiders see nothing
        Route("consensus.session_runs", "get", lambda w, t: f"/api/v1/sessions/{w.side(t).session.pk}/consensus/"),
        # the world's session has no submitted annotations: an admin gets past access to the input check
        Route("consensus.request", "post", lambda w, t: f"/api/v1/sessions/{w.side(t).session.pk}/consensus/",
              lambda w, t: {}),
        Route("consensus.study_agreement", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/agreement/"),
        Route("consensus.settings", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/consensus-settings/"),
        Route("consensus.settings_update", "patch",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/consensus-settings/",
              lambda w, t: {"values": {"reference_gap_vox": 1.0}, "reason": "matrix"}),
        Route("consensus.retrieve", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/"),
        Route("consensus.lesions", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/lesions/"),
        Route("consensus.lesions_csv", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/lesions/csv/"),
        Route("consensus.candidates", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/candidates/"),
        Route("consensus.agreement", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/agreement/"),
        Route("consensus.lesion_labels", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/lesion-labels/"),
        Route("consensus.reference_labels", "get",
              lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/reference-labels/"),
        Route("consensus.decisions", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/decisions/"),
        # a decided class is measured again from the run's inputs, which the world's run does not
        # have: an admin gets past access to 410 ("an input ... was deleted"), nothing stored
        Route("consensus.class_decision", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/class-decisions/",
              lambda w, t: {"lesion": 2, "lesion_type": "cortical", "reason": "mostly cortex on FLAIR"}),
        Route("consensus.adjudication", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/adjudications/",
              lambda w, t: {"candidate": 3, "include": False, "reason": "a vessel"}),
        Route("consensus.exclusion", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/exclusions/",
              lambda w, t: {"lesion": 2, "reason_code": "artifact", "reason": "streaks"}),
        # voxels outside every reference ROI: an admin gets past access to the voxel check
        Route("consensus.voxel_removal", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/voxel-removals/",
              lambda w, t: {"target": "reference", "voxels": [[0, 0, 0]], "reason": "a vessel"}),
        # a mask on the grid whose one voxel is in no reference ROI: an admin gets past access to the voxel check
        Route("consensus.voxel_edit", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/voxel-edits/",
              lambda w, t: {"operation": "remove", "target": "reference", "mask": _mask_b64(), "reason": "a vessel"}),
        # lesion 2 has no proposed vessel voxel: an admin gets past access to the check
        Route("consensus.vessel_application", "post",
              lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/vessel-applications/",
              lambda w, t: {"lesion": 2, "target": "lesion", "reason": "a vessel"}),
        Route("consensus.qc", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/qc/"),
        Route("consensus.vessel_proposals", "get", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/vessel-proposals/"),
        Route("consensus.remeasure", "post", lambda w, t: f"/api/v1/consensus/{_run(w, t).pk}/remeasure/"),
        Route("consensus.revert", "post",
              lambda w, t: f"/api/v1/consensus-decisions/{w.side(t).decision.pk}/revert/",
              lambda w, t: {"reason": "not a vein after all"}),
        # statistics (reports): the study's admins and PI read and ask for a computation, admins
        # import; raters and outsiders see nothing
        Route("reports.statistics", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/statistics/"),
        Route("reports.statistics_request", "post",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/statistics/",
              lambda w, t: {"excluded": "include"}),
        Route("reports.statistics_csv", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/statistics/csv/"),
        Route("reports.lesion_table", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/lesion-table/"),
        Route("reports.lesion_table_csv", "get",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/lesion-table/csv/"),
        Route("reports.patient_table", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/patient-table/"),
        Route("reports.patient_table_csv", "get",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/patient-table/csv/"),
        Route("reports.imported_tables", "get",
              lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/lesion-tables/"),
        Route("reports.import", "post", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/lesion-tables/",
              lambda w, t: {"file": _lesion_csv()}, multipart=True),
        # export: the study's admins and PI download QSM, consensus and raters' names; raters never
        Route("export.bids_zip", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/export/bids.zip"),
        Route("export.list", "get", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/exports/"),
        Route("export.prepare", "post", lambda w, t: f"/api/v1/studies/{w.side(t).study.pk}/exports/"),
        Route("export.download", "get", lambda w, t: f"/api/v1/exports/{w.side(t).export.pk}/download/"),
    ]
}

# series.upload names the session only in the form: whoever administers no study is refused (403)
# before the body is read, whatever the session, so the answer says nothing about it.
# series.upload_to_url names it in the URL (?session=), checked before the body too: 404/403.
STATUS_MATRIX = """
route                      anonymous outsider staff rater   pi      admin   other_admin superuser
study.create               401       403      201   403     403     403     403         201
study.retrieve             401       404      404   200/404 200/404 200/404 404/200     200
study.update               401       404      404   403/404 403/404 200/404 404/200     200
member.list                401       404      404   403/404 200/404 200/404 404/200     200
member.set                 401       404      404   403/404 403/404 201/404 404/201     201
member.remove              401       404      404   403/404 403/404 204/404 404/204     204
study.bids_import          401       404      404   403/404 403/404 200/404 404/200     200
subject.create             401       404      404   403/404 403/404 201/404 404/201     201
subject.retrieve           401       404      404   200/404 200/404 200/404 404/200     200
subject.update             401       404      404   403/404 403/404 200/404 404/200     200
session.create             401       404      404   403/404 403/404 201/404 404/201     201
session.retrieve           401       404      404   200/404 200/404 200/404 404/200     200
session.update             401       404      404   403/404 403/404 200/404 404/200     200
series.retrieve            401       404      404   200/404 200/404 200/404 404/200     200
series.retrieve_blinded    401       404      404   404     200/404 200/404 404/200     200
series.update              401       404      404   403/404 403/404 200/404 404/200     200
series.update_blinded      401       404      404   404     403/404 200/404 404/200     200
series.volume              401       404      404   200/404 200/404 200/404 404/200     200
series.volume_blinded      401       404      404   404     200/404 200/404 404/200     200
series.volume_304          401       404      404   304/404 304/404 304/404 404/304     304
series.volume_304_blinded  401       404      404   404     304/404 304/404 404/304     304
series.volume_head         401       404      404   200/404 200/404 200/404 404/200     200
series.volume_head_blinded 401       404      404   404     200/404 200/404 404/200     200
series.display             401       404      404   200/404 200/404 200/404 404/200     200
series.display_blinded     401       404      404   404     200/404 200/404 404/200     200
series.upload              401       403      403   403     403     201/404 404/201     201
series.upload_to_url       401       404      404   403/404 403/404 201/404 404/201     201
job.retrieve               401       404      404   404     200/404 200/404 404/200     200
job.cancel                 401       404      404   404     403/404 200/404 404/200     200
job.retry                  401       404      404   404     403/404 201/404 404/201     201
job.submit                 401       404      404   403/404 403/404 201/404 404/201     201
processing.overview        401       404      404   404     200/404 200/404 404/200     200
processing.session_run     401       404      404   403/404 403/404 201/404 404/201     201
processing.study_run       401       404      404   404     403/404 201/404 404/201     201
consensus.session_runs     401       404      404   404     200/404 200/404 404/200     200
consensus.request          401       404      404   404     403/404 400/404 404/400     400
consensus.study_agreement  401       404      404   404     200/404 200/404 404/200     200
consensus.settings         401       404      404   404     200/404 200/404 404/200     200
consensus.settings_update  401       404      404   404     403/404 200/404 404/200     200
consensus.retrieve         401       404      404   404     200/404 200/404 404/200     200
consensus.lesions          401       404      404   404     200/404 200/404 404/200     200
consensus.lesions_csv      401       404      404   404     200/404 200/404 404/200     200
consensus.candidates       401       404      404   404     200/404 200/404 404/200     200
consensus.agreement        401       404      404   404     200/404 200/404 404/200     200
consensus.lesion_labels    401       404      404   404     200/404 200/404 404/200     200
consensus.reference_labels 401       404      404   404     200/404 200/404 404/200     200
consensus.decisions        401       404      404   404     200/404 200/404 404/200     200
consensus.class_decision   401       404      404   404     403/404 410/404 404/410     410
consensus.adjudication     401       404      404   404     403/404 201/404 404/201     201
consensus.exclusion        401       404      404   404     403/404 201/404 404/201     201
consensus.voxel_removal    401       404      404   404     403/404 400/404 404/400     400
consensus.voxel_edit       401       404      404   404     403/404 400/404 404/400     400
consensus.vessel_application 401     404      404   404     403/404 400/404 404/400     400
consensus.qc               401       404      404   404     200/404 200/404 404/200     200
consensus.vessel_proposals 401       404      404   404     200/404 200/404 404/200     200
consensus.remeasure        401       404      404   404     403/404 201/404 404/201     201
consensus.revert           401       404      404   404     403/404 201/404 404/201     201
reports.statistics         401       404      404   404     200/404 200/404 404/200     200
reports.statistics_request 401       404      404   404     202/404 202/404 404/202     202
reports.statistics_csv     401       404      404   404     200/404 200/404 404/200     200
reports.lesion_table       401       404      404   404     200/404 200/404 404/200     200
reports.lesion_table_csv   401       404      404   404     200/404 200/404 404/200     200
reports.patient_table      401       404      404   404     200/404 200/404 404/200     200
reports.patient_table_csv  401       404      404   404     200/404 200/404 404/200     200
reports.imported_tables    401       404      404   404     200/404 200/404 404/200     200
reports.import             401       404      404   404     403/404 201/404 404/201     201
export.bids_zip            401       404      404   404     200/404 200/404 404/200     200
export.list                401       404      404   404     200/404 200/404 404/200     200
export.prepare             401       404      404   404     202/404 202/404 404/202     202
export.download            401       404      404   404     200/404 200/404 404/200     200
"""

_OWN_SERIES = {"own:t2star_mag", "own:qsm", "own:lesion_mask"}
_OTHER_SERIES = {"other:t2star_mag", "other:qsm", "other:lesion_mask"}

#: list route -> role -> the labels of exactly the objects listed (or a status for a refusal)
LIST_MATRIX: dict[str, dict[str, set[str] | int]] = {
    "/api/v1/studies/": {
        "anonymous": 401, "outsider": set(), "staff": set(), "rater": {"own"}, "pi": {"own"},
        "admin": {"own"}, "other_admin": {"other"}, "superuser": {"own", "other"},
    },
    "/api/v1/subjects/": {
        "anonymous": 401, "outsider": set(), "staff": set(), "rater": {"own"}, "pi": {"own"},
        "admin": {"own"}, "other_admin": {"other"}, "superuser": {"own", "other"},
    },
    "/api/v1/sessions/": {
        "anonymous": 401, "outsider": set(), "staff": set(), "rater": {"own"}, "pi": {"own"},
        "admin": {"own"}, "other_admin": {"other"}, "superuser": {"own", "other"},
    },
    "/api/v1/series/": {
        "anonymous": 401, "outsider": set(), "staff": set(),
        "rater": {"own:t2star_mag"},  # no QSM, no lesion mask
        "pi": _OWN_SERIES, "admin": _OWN_SERIES, "other_admin": _OTHER_SERIES,
        "superuser": _OWN_SERIES | _OTHER_SERIES,
    },
}
LIST_MATRIX["/api/v1/jobs/"] = {
    "anonymous": 401, "outsider": set(), "staff": set(), "rater": set(),  # raters see no jobs
    "pi": {"own:queued", "own:failed"}, "admin": {"own:queued", "own:failed"},
    "other_admin": {"other:queued", "other:failed"},
    "superuser": {"own:queued", "own:failed", "other:queued", "other:failed"},
}
_LIST_MODEL = {
    "/api/v1/jobs/": "job",
    "/api/v1/studies/": "study",
    "/api/v1/subjects/": "subject",
    "/api/v1/sessions/": "session",
    "/api/v1/series/": "series",
}


# --- the table helper ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    route: str
    role: str
    target: Target
    status: int
    id: str = field(compare=False, default="")


def parse_matrix(table: str, routes: dict[str, Route], roles: tuple[str, ...]) -> list[Case]:
    """Expand a text table (routes x roles, cells ``own/other`` or one status) into cases."""
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header[0] == "route" and tuple(header[1:]) == roles, f"columns must be {roles}"
    assert [r[0] for r in rows] == list(routes), "every route needs exactly one row, in order"
    cases = []
    for name, *cells in rows:
        assert len(cells) == len(roles), f"{name}: {len(cells)} cells for {len(roles)} roles"
        for role, cell in zip(roles, cells):
            if routes[name].untargeted:
                assert "/" not in cell, f"{name} has no target object: one status per role"
                targets = {"-": int(cell)}
            else:
                own, _, other = cell.partition("/")
                targets = {"own": int(own), "other": int(other or own)}
            for target, status in targets.items():
                cases.append(Case(name, role, target, status, f"{name}-{role}-{target}-{status}"))
    return cases


CASES = parse_matrix(STATUS_MATRIX, ROUTES, ROLES)


def request(world: World, route: Route, role: str, target: Target):
    client = world.client(role)
    kwargs: dict[str, Any] = dict(route.headers(world, target))
    if route.body is not None and route.content_type:
        kwargs["data"] = route.body(world, target)
        kwargs["content_type"] = route.content_type
    elif route.body is not None:
        kwargs["data"] = route.body(world, target)
        kwargs["format"] = "multipart" if route.multipart else "json"
    return getattr(client, route.method)(route.path(world, target), **kwargs)


# --- the tests -------------------------------------------------------------------------------


def test_it_covers_every_route_of_the_api():
    """A new route must get a row in a matrix (this lists the studies API's URL names)."""
    from qsmreview.studies.api.urls import urlpatterns

    covered = {
        "api-study-list": {"study.create", "/api/v1/studies/"},
        "api-study-detail": {"study.retrieve", "study.update"},
        "api-study-members": {"member.list", "member.set"},
        "api-study-member": {"member.remove"},
        "api-study-bids-import": {"study.bids_import"},
        "api-subject-list": {"subject.create", "/api/v1/subjects/"},
        "api-subject-detail": {"subject.retrieve", "subject.update"},
        "api-session-list": {"session.create", "/api/v1/sessions/"},
        "api-session-detail": {"session.retrieve", "session.update"},
        "api-series-list": {"series.upload", "series.upload_to_url", "/api/v1/series/"},
        "api-series-detail": {"series.retrieve", "series.update"},
        "api-series-volume": {"series.volume", "series.volume_304", "series.volume_head"},
        "api-series-display": {"series.display", "series.display_blinded"},
    }
    assert {p.name for p in urlpatterns} == set(covered)
    for rows in covered.values():
        assert rows <= set(ROUTES) | set(LIST_MATRIX)


def test_it_covers_every_route_of_the_jobs_and_processing_apis():
    from qsmreview.jobs.api.urls import urlpatterns as jobs
    from qsmreview.processing.api.urls import urlpatterns as processing

    covered = {
        "api-jobs": {"job.submit", "/api/v1/jobs/"},
        "api-job-kinds": set(),  # the registry's kinds: the same for every signed-in user
        "api-job-detail": {"job.retrieve"},
        "api-job-cancel": {"job.cancel"},
        "api-job-retry": {"job.retry"},
        "api-study-processing": {"processing.overview", "processing.study_run"},
        "api-session-processing": {"processing.session_run"},
    }
    assert {p.name for p in [*jobs, *processing]} == set(covered)
    for rows in covered.values():
        assert rows <= set(ROUTES) | set(LIST_MATRIX)


def test_it_covers_every_route_of_the_consensus_api():
    from qsmreview.consensus.api.urls import urlpatterns

    covered = {
        "api-session-consensus": {"consensus.session_runs", "consensus.request"},
        "api-study-agreement": {"consensus.study_agreement"},
        "api-study-consensus-settings": {"consensus.settings", "consensus.settings_update"},
        "api-consensus-detail": {"consensus.retrieve"},
        "api-consensus-lesions": {"consensus.lesions"},
        "api-consensus-lesions-csv": {"consensus.lesions_csv"},
        "api-consensus-candidates": {"consensus.candidates"},
        "api-consensus-agreement": {"consensus.agreement"},
        "api-consensus-lesion-labels": {"consensus.lesion_labels"},
        "api-consensus-reference-labels": {"consensus.reference_labels"},
        "api-consensus-decisions": {"consensus.decisions"},
        "api-consensus-class-decision": {"consensus.class_decision"},
        "api-consensus-adjudication": {"consensus.adjudication"},
        "api-consensus-exclusion": {"consensus.exclusion"},
        "api-consensus-voxel-removal": {"consensus.voxel_removal"},
        "api-consensus-voxel-edit": {"consensus.voxel_edit"},
        "api-consensus-vessel-application": {"consensus.vessel_application"},
        "api-consensus-qc": {"consensus.qc"},
        "api-consensus-vessel-proposals": {"consensus.vessel_proposals"},
        "api-consensus-remeasure": {"consensus.remeasure"},
        "api-consensus-revert": {"consensus.revert"},
    }
    assert {p.name for p in urlpatterns} == set(covered)
    for rows in covered.values():
        assert rows <= set(ROUTES) | set(LIST_MATRIX)


def test_it_covers_every_route_of_the_statistics_api():
    from qsmreview.reports.api.urls import urlpatterns

    covered = {
        "api-study-statistics": {"reports.statistics", "reports.statistics_request"},
        "api-study-statistics-csv": {"reports.statistics_csv"},
        "api-study-lesion-table": {"reports.lesion_table"},
        "api-study-lesion-table-csv": {"reports.lesion_table_csv"},
        "api-study-patient-table": {"reports.patient_table"},
        "api-study-patient-table-csv": {"reports.patient_table_csv"},
        "api-study-lesion-tables": {"reports.imported_tables", "reports.import"},
    }
    assert {p.name for p in urlpatterns} == set(covered)
    for rows in covered.values():
        assert rows <= set(ROUTES) | set(LIST_MATRIX)


def test_it_covers_every_route_of_the_exports_api():
    from qsmreview.exports.api.urls import urlpatterns

    covered = {
        "api-study-export-bids": {"export.bids_zip"},
        "api-study-exports": {"export.list", "export.prepare"},
        "api-export-download": {"export.download"},
    }
    assert {p.name for p in urlpatterns} == set(covered)
    for rows in covered.values():
        assert rows <= set(ROUTES) | set(LIST_MATRIX)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_it_answers_the_matrix_status(world: World, case: Case):
    route = ROUTES[case.route]
    before = db_fingerprint()

    response = request(world, route, case.role, case.target)

    body = as_bytes(response)[:300]
    assert response.status_code == case.status, body
    if case.status == 401:
        assert response["WWW-Authenticate"] == 'Token'
    if case.status == 401 and route.method != "head":
        assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}
    if case.status in (403, 404) and route.method != "head":
        assert response.json()["code"] in ("forbidden", "not_found"), body
    if case.status >= 400:
        assert db_fingerprint() == before, "a refused request changed the database"
    if case.status == 304:
        assert body == b""
        assert response["ETag"] == route.headers(world, case.target)["HTTP_IF_NONE_MATCH"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", list(LIST_MATRIX))
def test_it_lists_exactly_what_the_role_may_see(world: World, url: str, role: str):
    expected = LIST_MATRIX[url][role]

    response = world.client(role).get(url)

    if isinstance(expected, int):
        assert response.status_code == expected
        return
    assert response.status_code == 200, response.content
    listed = [world.label(_LIST_MODEL[url], item["id"]) for item in response.json()["results"]]
    assert sorted(listed) == sorted(expected)


# --- blinding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["kind=qsm", "kind=lesion_mask", "blinded=true", "is_current=true&kind=qsm"]
)
def test_it_gives_a_rater_nothing_blinded_whatever_the_filter(world: World, query: str):
    response = world.client("rater").get(f"/api/v1/series/?{query}")

    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


@pytest.mark.parametrize("role", ["pi", "admin"])
def test_it_shows_blinded_series_to_pi_and_admin(world: World, role: str):
    response = world.client(role).get("/api/v1/series/?blinded=true")

    listed = {world.label("series", item["id"]) for item in response.json()["results"]}
    assert listed == {"own:qsm", "own:lesion_mask"}


def test_it_shows_a_series_to_raters_once_an_admin_unblinds_it(world: World):
    qsm = world.own.series["qsm"]
    rater = world.client("rater")
    assert rater.get(f"/api/v1/series/{qsm.pk}/").status_code == 404

    response = world.client("admin").patch(
        f"/api/v1/series/{qsm.pk}/", {"blinded": False}, format="json"
    )

    assert response.status_code == 200 and response.json()["blinded"] is False
    assert rater.get(f"/api/v1/series/{qsm.pk}/").status_code == 200
    assert as_bytes(rater.get(f"/api/v1/series/{qsm.pk}/volume/")) == qsm.file.open("rb").read()
    listed = {world.label("series", i["id"]) for i in rater.get("/api/v1/series/").json()["results"]}
    assert listed == {"own:t2star_mag", "own:qsm"}


def test_it_hides_a_series_from_raters_once_an_admin_blinds_it(world: World):
    mag = world.own.series["t2star_mag"]

    world.client("admin").patch(f"/api/v1/series/{mag.pk}/", {"blinded": True}, format="json")

    rater = world.client("rater")
    assert rater.get(f"/api/v1/series/{mag.pk}/").status_code == 404
    assert rater.get(f"/api/v1/series/{mag.pk}/volume/").status_code == 404
    assert rater.get("/api/v1/series/").json()["results"] == []


def test_it_answers_a_blinded_series_exactly_like_a_missing_one(world: World):
    rater = world.client("rater")
    qsm = world.own.series["qsm"]
    missing = max(s.pk for side in (world.own, world.other) for s in side.series.values()) + 100

    for suffix in ("", "volume/"):
        blinded = rater.get(f"/api/v1/series/{qsm.pk}/{suffix}")
        absent = rater.get(f"/api/v1/series/{missing}/{suffix}")
        assert (blinded.status_code, blinded.json()) == (absent.status_code, absent.json())
        assert blinded.json() == {"detail": "no such series", "code": "not_found"}


# --- the browsable API (HTML) ----------------------------------------------------------------
# The HTML renderer must show no more than the JSON: no form whose <select> lists other studies'
# subjects or sessions, no filter form with choices, no blinded input in provenance. Each route is
# read as a browser does (Accept: text/html) and as ?format=api, and the page must contain none of
# the distinctive strings of what the role may not see.

_HTML_MODES = ({"HTTP_ACCEPT": "text/html"}, {"query": "format=api"})
#: roles that see each side (blinded series included, for "blinded")
_SEES = {
    "own": {"rater", "pi", "admin", "superuser"},
    "own_blinded": {"pi", "admin", "superuser"},
    "other": {"other_admin", "superuser"},
    "other_blinded": {"other_admin", "superuser"},
}


@pytest.fixture
def html_world(world: World) -> World:
    """The world plus, on each side, a coregistered FLAIR whose provenance names the side's QSM."""
    from tests.api.world import make_series

    for side in (world.own, world.other):
        flair = make_series(side.session, "flair", seed=9)
        qsm = side.series["qsm"]
        flair.provenance = {"inputs": [{"series": qsm.pk, "kind": "qsm", "version": qsm.version, "sha256": qsm.sha256}]}
        flair.save(update_fields=["provenance"])
    return world


def _secrets(world: World, role: str) -> set[str]:
    """Strings that only objects ``role`` may not see contain (names, codes, checksums)."""
    parts = {}
    for side in (world.own, world.other):
        parts[side.name] = {side.study.name, side.subject.code, side.series["t2star_mag"].sha256}
        parts[f"{side.name}_blinded"] = {side.series[k].sha256 for k in ("qsm", "lesion_mask")}
    hidden = set().union(*(v for k, v in parts.items() if role not in _SEES[k]))
    seen = set().union(*(v for k, v in parts.items() if role in _SEES[k]))
    return hidden - seen  # both sides' files have the same bytes: a shared checksum is no secret


def _page_text(response) -> str:
    """The page without its random CSRF token (which could contain a short code such as "P01")."""
    import re

    text = as_bytes(response).decode("utf-8", "replace")
    return re.sub(r"\b(?![0-9a-f]{64}\b)[A-Za-z0-9]{32,}\b", "<token>", text)


def _html_get(client, path: str, mode: dict[str, str], headers: dict[str, str]):
    if "query" in mode:
        path = f"{path}{'&' if '?' in path else '?'}{mode['query']}"
        return client.get(path, **headers)
    return client.get(path, **{**headers, **mode})


_GET_ROUTES = [name for name, r in ROUTES.items() if r.method == "get"]


@pytest.mark.parametrize("target", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", _GET_ROUTES)
def test_it_shows_nothing_more_in_html_than_the_role_may_see(html_world: World, name: str, role: str, target: str):
    route, world = ROUTES[name], html_world
    secrets = _secrets(world, role)
    json_status = request(world, route, role, target).status_code

    for mode in _HTML_MODES:
        response = _html_get(world.client(role), route.path(world, target), mode, route.headers(world, target))

        assert response.status_code == json_status, (mode, as_bytes(response)[:300])
        body = _page_text(response)
        leaked = sorted(s for s in secrets if s in body)
        assert not leaked, f"{name} as {role} ({mode}) shows {leaked}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [*LIST_MATRIX, "/api/v1/jobs/kinds/"])
def test_it_lists_nothing_more_in_html_than_the_role_may_see(html_world: World, url: str, role: str):
    secrets = _secrets(html_world, role)

    for mode in _HTML_MODES:
        response = _html_get(html_world.client(role), url, mode, {})

        body = _page_text(response)
        assert response.status_code in (200, 401), body[:300]
        leaked = sorted(s for s in secrets if s in body)
        assert not leaked, f"{url} as {role} ({mode}) shows {leaked}"
        assert "<select" not in body, "a form with choices"
        assert 'method="POST"' not in body, "a write form"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", list(LIST_MATRIX))
def test_it_offers_no_choices_of_objects_to_options(html_world: World, url: str, role: str):
    response = html_world.client(role).options(url)

    body = response.content.decode()
    leaked = sorted(s for s in _secrets(html_world, role) if s in body)
    assert not leaked, f"OPTIONS {url} as {role} shows {leaked}"


def test_it_offers_no_writable_related_field_in_any_view_s_serializer():
    """A writable foreign key would offer every row of its model (forms, OPTIONS, a future page)."""
    from django.urls import get_resolver
    from rest_framework import serializers
    from rest_framework.generics import GenericAPIView

    def views(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from views(p.url_patterns)
            elif getattr(p.callback, "view_class", None):
                yield p.callback.view_class

    checked = 0
    for view_class in views(get_resolver().url_patterns):
        if not issubclass(view_class, GenericAPIView) or view_class.serializer_class is None:
            continue
        for name, f in view_class.serializer_class().fields.items():
            related = isinstance(f, (serializers.RelatedField, serializers.ManyRelatedField))
            assert not related or f.read_only, f"{view_class.__name__}.{name} is a writable relation"
        checked += 1
    assert checked >= 5
