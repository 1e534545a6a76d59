"""The annotations REST routes: status codes and bodies per role, conflicts, the mask download."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from qsmreview.annotations.models import Assignment, Revision
from qsmreview.annotations.services import RevisionConflict, assignment_create, assignment_submit, revision_create
from tests.annotations.conftest import mask_bytes, world_mm
from tests.api.world import as_bytes, client_for, make_series
from tests.fixtures.uploads import csrf_browser

pytestmark = pytest.mark.django_db

UNKNOWN = 987654321
SUBMITTED = "this case is submitted; ask an admin to reopen it"


def save(user, assignment, *voxels, parent=None, lesions=()):
    return revision_create(
        by=user, assignment=assignment, mask_bytes=mask_bytes(*voxels), parent=parent, lesions=list(lesions)
    )


def upload(client, assignment_id, *voxels, parent="", lesions="[]", active_seconds="10", data=None):
    body = {
        "mask": SimpleUploadedFile("drawing.nii.gz", data if data is not None else mask_bytes(*voxels)),
        "parent": "" if parent is None else str(parent),
        "lesions": lesions,
        "active_seconds": active_seconds,
    }
    return client.post(f"/api/v1/assignments/{assignment_id}/revisions/", body, format="multipart")


@pytest.fixture
def other_case(session, rater2, admin, mag):
    """rater2's assignment of the same session, with one saved revision."""
    case = assignment_create(by=admin, session=session, rater=rater2)
    save(rater2, case, (3, 3, 3))
    return case


# --- assignments -------------------------------------------------------------------------------


def test_it_lists_a_raters_own_assignments_and_all_of_the_study_for_admins(
    assignment, other_case, rater, admin, pi, outsider
) -> None:
    def ids(user, query=""):
        response = client_for(user).get(f"/api/v1/assignments/{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids(rater) == [assignment.pk]
    assert ids(admin) == [assignment.pk, other_case.pk]
    assert ids(pi, f"?rater={rater.pk}") == [assignment.pk]
    assert ids(admin, "?status=in_progress") == [other_case.pk]
    assert ids(outsider) == []
    assert client_for(None).get("/api/v1/assignments/").status_code == 401


def test_an_admin_assigns_sessions_in_bulk(study, session, mag, rater, rater2, admin) -> None:
    url = f"/api/v1/studies/{study.pk}/assignments/"

    response = client_for(admin).post(url, {"raters": [rater2.pk, rater.pk]}, format="json")
    again = client_for(admin).post(url, {"raters": [rater.pk], "sessions": [session.pk]}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert [(row["rater_username"], row["session"], row["status"]) for row in body] == [
        ("rater1", session.pk, "not_started"),
        ("rater2", session.pk, "not_started"),
    ]
    assert body[0]["assigned_by"] == "admin" and body[0]["latest_revision"] is None
    assert again.status_code == 201 and again.json()[0]["id"] == body[0]["id"]
    assert Assignment.objects.count() == 2


def test_assigning_refuses_non_raters_and_non_admins(study, other_study, session, rater, pi, admin, other_admin) -> None:
    url = f"/api/v1/studies/{study.pk}/assignments/"

    not_a_rater = client_for(admin).post(url, {"raters": [pi.pk]}, format="json")
    by_pi = client_for(pi).post(url, {"raters": [rater.pk]}, format="json")
    by_rater = client_for(rater).post(url, {"raters": [rater.pk]}, format="json")
    by_stranger = client_for(other_admin).post(url, {"raters": [rater.pk]}, format="json")
    unknown_field = client_for(admin).post(url, {"raters": [rater.pk], "everyone": True}, format="json")

    assert not_a_rater.status_code == 400
    assert not_a_rater.json() == {
        "detail": f"raters: user {pi.pk} is not a rater of this study", "code": "invalid", "field": "raters",
    }
    assert (by_pi.status_code, by_pi.json()["code"]) == (403, "forbidden")
    assert by_rater.status_code == 403
    assert by_stranger.status_code == 404
    assert unknown_field.status_code == 400 and unknown_field.json()["field"] == "everyone"
    assert not Assignment.objects.exists()


def test_the_detail_gives_the_workspace_its_panels_and_rights(assignment, mag, rater, admin, pi) -> None:
    flair = make_series(assignment.session, "flair")

    mine = client_for(rater).get(f"/api/v1/assignments/{assignment.pk}/")
    admins = client_for(admin).get(f"/api/v1/assignments/{assignment.pk}/")

    assert mine.status_code == 200
    body = mine.json()
    assert body["panels"] == [
        {
            "id": mag.pk, "kind": "t2star_mag", "label": "", "title": "T2*-weighted magnitude",
            "url": f"/api/v1/series/{mag.pk}/display/", "name": f"series-{mag.pk}.nii",
        },
        {
            "id": flair.pk, "kind": "flair", "label": "", "title": "T2 FLAIR",
            "url": f"/api/v1/series/{flair.pk}/display/", "name": f"series-{flair.pk}.nii",
        },
    ]
    assert (body["rateable"], body["not_rateable_reason"], body["latest_revision"]) == (True, "", None)
    assert (body["min_lesion_diameter_mm"], body["read_only"], body["status"]) == (2.0, False, "not_started")
    assert admins.json()["read_only"] is True
    assert client_for(pi).get(f"/api/v1/assignments/{assignment.pk}/").json()["read_only"] is True


def test_the_detail_gives_the_next_lesion_number_never_reusing_an_erased_or_conflict_copys(assignment, rater) -> None:
    client = client_for(rater)
    detail = lambda: client.get(f"/api/v1/assignments/{assignment.pk}/").json()["next_lesion_number"]  # noqa: E731
    assert detail() == 1

    r1 = save(rater, assignment, (1, 1, 1), (5, 5, 5))  # lesions 1 and 2
    r2 = save(rater, assignment, (5, 5, 5), parent=r1, lesions=[{"number": 2, "anchor_mm": world_mm(5, 5, 5)}])
    with pytest.raises(RevisionConflict):  # another tab, still on r1, draws a lesion: 3, in a copy
        save(rater, assignment, (1, 1, 1), (5, 5, 5), (9, 9, 2), parent=r1, lesions=[
            {"number": 1, "anchor_mm": world_mm(1, 1, 1)}, {"number": 2, "anchor_mm": world_mm(5, 5, 5)},
        ])
    assert [x["number"] for x in r2.lesions] == [2]
    assert detail() == 4  # not 1 (erased in r2) nor 3 (used in the conflict copy)

    r4 = save(rater, assignment, (5, 5, 5), (12, 12, 6), parent=r2, lesions=[{"number": 2, "anchor_mm": world_mm(5, 5, 5)}])
    assert [x["number"] for x in r4.lesions] == [2, 4]  # the server numbers a new component the same way
    assert detail() == 5


def test_another_raters_assignment_is_as_absent_as_an_unknown_id(assignment, other_case, rater) -> None:
    client = client_for(rater)

    theirs = client.get(f"/api/v1/assignments/{other_case.pk}/")
    unknown = client.get(f"/api/v1/assignments/{UNKNOWN}/")

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() == {"detail": "no such assignment", "code": "not_found"}


def test_unassigning_saved_work_needs_force_and_a_reason(assignment, rater, admin) -> None:
    save(rater, assignment, (1, 1, 1))
    url = f"/api/v1/assignments/{assignment.pk}/"

    refused = client_for(admin).delete(url, {}, format="json")
    no_reason = client_for(admin).delete(url, {"force": True}, format="json")
    by_rater = client_for(rater).delete(url, {"force": True, "reason": "x"}, format="json")
    done = client_for(admin).delete(url, {"force": True, "reason": "rater left"}, format="json")

    assert refused.status_code == 409
    assert refused.json()["code"] == "conflict" and "has saved work" in refused.json()["detail"]
    assert (no_reason.status_code, no_reason.json()["field"]) == (400, "reason")
    assert by_rater.status_code == 403
    assert done.status_code == 204
    assert client_for(rater).get(url).status_code == 404  # gone from the rater's view


def test_submit_then_reopen(assignment, rater, admin, pi) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    base = f"/api/v1/assignments/{assignment.pk}"

    by_admin = client_for(admin).post(f"{base}/submit/", {"revision": r1.pk}, format="json")
    submitted = client_for(rater).post(f"{base}/submit/", {"revision": r1.pk}, format="json")
    locked = upload(client_for(rater), assignment.pk, (2, 2, 2), parent=r1.pk)
    by_pi = client_for(pi).post(f"{base}/reopen/", {"reason": "x"}, format="json")
    no_reason = client_for(admin).post(f"{base}/reopen/", {}, format="json")
    reopened = client_for(admin).post(f"{base}/reopen/", {"reason": "redo the cortex"}, format="json")

    assert by_admin.status_code == 403
    assert submitted.status_code == 200
    assert (submitted.json()["status"], submitted.json()["submitted_revision"]) == ("submitted", r1.pk)
    assert locked.status_code == 409 and locked.json() == {"detail": SUBMITTED, "code": "conflict"}
    assert by_pi.status_code == 403
    assert (no_reason.status_code, no_reason.json()["field"]) == (400, "reason")
    assert reopened.status_code == 200 and reopened.json()["status"] == "in_progress"


def test_submitting_nothing_or_a_stale_revision_is_refused(assignment, rater) -> None:
    url = f"/api/v1/assignments/{assignment.pk}/submit/"
    nothing = client_for(rater).post(url, {"revision": None}, format="json")
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (2, 2, 2), parent=r1)

    stale = client_for(rater).post(url, {"revision": r1.pk}, format="json")
    unknown = client_for(rater).post(url, {"revision": UNKNOWN}, format="json")

    assert nothing.status_code == 400 and nothing.json()["detail"].startswith("save first")
    assert stale.status_code == 409 and stale.json()["latest_revision"] == r2.pk
    assert (unknown.status_code, unknown.json()["field"]) == (400, "revision")


def test_the_audit_trail_is_for_admins_and_the_pi(assignment, rater, admin, pi) -> None:
    url = f"/api/v1/assignments/{assignment.pk}/events/"

    response = client_for(pi).get(url)

    assert response.status_code == 200
    assert [(e["action"], e["by"], e["reason"]) for e in response.json()["results"]] == [("assigned", "admin", "")]
    assert client_for(admin).get(url).status_code == 200
    assert client_for(rater).get(url).status_code == 403


# --- revisions ---------------------------------------------------------------------------------


def test_a_rater_saves_a_revision_with_lesions(assignment, rater) -> None:
    lesions = [{"number": 1, "anchor_mm": world_mm(1, 1, 1), "vote": "wm", "confidence": 5, "note": "ovoid"}]

    response = upload(client_for(rater), assignment.pk, (1, 1, 1), (1, 1, 2), lesions=json.dumps(lesions))

    assert response.status_code == 201, response.json()
    body = response.json()
    revision = Revision.objects.get()
    assert body["id"] == revision.pk
    assert (body["number"], body["kind"], body["parent"], body["restored_from"]) == (1, "save", None, None)
    assert (body["author"], body["sha256"], body["size_bytes"]) == ("rater1", revision.sha256, revision.size_bytes)
    assert body["active_seconds"] == 10.0
    assert body["mask_url"] == f"/api/v1/revisions/{revision.pk}/mask/"
    # two voxels stacked in k: 2 x 0.25 mm^3, centroid voxel (1, 1, 1.5) = (-3.5, -4.5, -2.5) mm
    assert body["lesions"] == [
        {
            "number": 1, "voxels": 2, "volume_mm3": 0.5, "centroid_mm": [-3.5, -4.5, -2.5],
            "centroid_voxel": [1.0, 1.0, 1.5], "anchor_mm": world_mm(1, 1, 1), "below_min_size": True,
            "vote": "wm", "confidence": 5, "note": "ovoid",
        }
    ]


@pytest.mark.parametrize(
    ("lesions", "message"),
    [
        ("[{", "lesions: not valid JSON"),
        ('{"number": 1}', "lesions: must be a JSON list"),
        ('[{"number": 1, "anchor_mm": [NaN, 0, 0]}]', "lesions: not valid JSON"),
        ('[{"number": 2, "anchor_mm": [100, 100, 100]}]', "lesion 2: anchor"),
    ],
)
def test_bad_lesions_are_a_400_naming_the_field(assignment, rater, lesions, message) -> None:
    response = upload(client_for(rater), assignment.pk, (1, 1, 1), lesions=lesions)

    assert response.status_code == 400
    assert response.json()["field"] == "lesions"
    assert response.json()["detail"].startswith(message)
    assert not Revision.objects.exists()


def test_a_mask_off_the_grid_is_a_400_naming_the_mask(assignment, rater) -> None:
    response = upload(client_for(rater), assignment.pk, data=mask_bytes(shape=(16, 20, 6)))

    assert response.status_code == 400
    assert response.json() == {
        "detail": "mask shape 16x20x6 is not the T2* grid 16x20x8", "code": "invalid", "field": "mask",
    }


def test_a_stale_save_answers_409_with_both_ids(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (2, 2, 2), parent=r1)

    response = upload(client_for(rater), assignment.pk, (3, 3, 3), parent=r1.pk)

    assert response.status_code == 409
    body = response.json()
    copy = Revision.objects.get(kind="conflict")
    assert set(body) == {"detail", "code", "latest_revision", "conflict_revision"}
    assert (body["code"], body["latest_revision"], body["conflict_revision"]) == ("conflict", r2.pk, copy.pk)
    listed = client_for(rater).get(f"/api/v1/assignments/{assignment.pk}/revisions/").json()["results"]
    assert [(r["number"], r["kind"]) for r in listed] == [(3, "conflict"), (2, "save"), (1, "save")]


def test_only_the_rater_may_upload(assignment, other_case, rater, rater2, admin, pi) -> None:
    url_mine = assignment.pk

    assert upload(client_for(admin), url_mine, (1, 1, 1)).status_code == 403
    assert upload(client_for(pi), url_mine, (1, 1, 1)).json() == {
        "detail": "only the assigned rater can change this annotation", "code": "forbidden",
    }
    theirs = upload(client_for(rater), other_case.pk, (1, 1, 1))
    unknown = upload(client_for(rater), UNKNOWN, (1, 1, 1))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    assert Revision.objects.filter(assignment=assignment).count() == 0


def test_a_parent_of_another_case_is_a_400(assignment, other_case, rater) -> None:
    foreign = other_case.revisions.get()

    response = upload(client_for(rater), assignment.pk, (1, 1, 1), parent=foreign.pk)

    assert response.status_code == 400
    assert response.json()["field"] == "parent"


def test_another_raters_revision_and_mask_are_as_absent_as_unknown_ids(assignment, other_case, rater, admin) -> None:
    theirs = other_case.revisions.get()
    client = client_for(rater)

    for suffix in ("", "mask/"):
        hidden = client.get(f"/api/v1/revisions/{theirs.pk}/{suffix}")
        unknown = client.get(f"/api/v1/revisions/{UNKNOWN}/{suffix}")
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == unknown.json() == {"detail": "no such revision", "code": "not_found"}
    hidden_list = client.get(f"/api/v1/assignments/{other_case.pk}/revisions/")
    assert hidden_list.status_code == 404
    assert client_for(admin).get(f"/api/v1/revisions/{theirs.pk}/").status_code == 200


def test_the_mask_downloads_with_its_checksum_as_etag_and_revalidates(assignment, rater, pi) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    url = f"/api/v1/revisions/{r1.pk}/mask/"

    response = client_for(rater).get(url)
    again = client_for(pi).get(url, HTTP_IF_NONE_MATCH=f'"{r1.sha256}"')

    assert response.status_code == 200
    content = as_bytes(response)
    assert hashlib.sha256(content).hexdigest() == r1.sha256
    assert response["Content-Type"] == "application/gzip"
    assert response["ETag"] == f'"{r1.sha256}"'
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert again.status_code == 304 and again["ETag"] == f'"{r1.sha256}"'
    detail = client_for(rater).get(f"/api/v1/revisions/{r1.pk}/").json()
    assert (detail["id"], detail["sha256"]) == (r1.pk, r1.sha256)


def test_a_lost_mask_file_is_a_410(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r1.file.storage.delete(r1.file.name)

    response = client_for(rater).get(f"/api/v1/revisions/{r1.pk}/mask/")

    assert response.status_code == 410 and response.json()["code"] == "gone"


def test_restore_makes_a_new_revision_and_a_stale_one_is_409(assignment, rater, admin) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (2, 2, 2), parent=r1)
    url = f"/api/v1/revisions/{r1.pk}/restore/"

    by_admin = client_for(admin).post(url, {"parent": r2.pk}, format="json")
    restored = client_for(rater).post(url, {"parent": r2.pk}, format="json")
    stale = client_for(rater).post(url, {"parent": r2.pk}, format="json")

    assert by_admin.status_code == 403
    assert restored.status_code == 201
    body = restored.json()
    assert (body["number"], body["kind"], body["restored_from"], body["parent"], body["sha256"]) == (
        3, "restore", r1.pk, r2.pk, r1.sha256,
    )
    assert stale.status_code == 409
    assert stale.json()["latest_revision"] == body["id"] and stale.json()["conflict_revision"] is None


# --- progress ----------------------------------------------------------------------------------


def test_progress_is_for_admins_and_the_pi(study, assignment, other_case, rater, admin, pi, other_admin) -> None:
    url = f"/api/v1/studies/{study.pk}/progress/"

    response = client_for(pi).get(url)

    assert response.status_code == 200
    rows = response.json()
    assert [(r["rater_username"], r["status"], r["lesion_count"], r["rateable"], r["reason"]) for r in rows] == [
        ("rater1", "not_started", 0, True, ""),
        ("rater2", "in_progress", 1, True, ""),
    ]
    assert set(rows[0]) == {
        "assignment", "session", "subject_code", "session_label", "rater", "rater_username", "status",
        "last_saved_at", "lesion_count", "active_seconds", "rateable", "reason",
    }
    assert client_for(admin).get(url).status_code == 200
    assert client_for(rater).get(url).status_code == 403
    assert client_for(other_admin).get(url).status_code == 404


def test_a_submitted_case_is_read_only_for_its_rater(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    assignment_submit(by=rater, assignment=assignment, revision=r1)

    body = client_for(rater).get(f"/api/v1/assignments/{assignment.pk}/").json()

    assert (body["read_only"], body["latest_revision"], body["lesion_count"]) == (True, r1.pk, 1)


# --- permission before body ----------------------------------------------------------------------

BIG = 8 * 1024 * 1024
@pytest.mark.parametrize(("who", "code"), [("admin", 403), ("pi", 403), ("rater2", 404), ("outsider", 404)])
@pytest.mark.parametrize("how", ["token", "browser"])
def test_a_non_raters_upload_is_refused_before_the_mask_is_read(request, assignment, written, who, code, how) -> None:
    user = request.getfixturevalue(who)
    client = client_for(user) if how == "token" else csrf_browser(user)
    body = {"mask": SimpleUploadedFile("big.nii", b"\0" * BIG), "parent": "", "lesions": "[]"}

    response = client.post(f"/api/v1/assignments/{assignment.pk}/revisions/", body)

    assert response.status_code == code, response.content[:300]
    assert sum(written) == 0


def test_the_rater_can_upload_from_the_browser(assignment, rater) -> None:
    body = {"mask": SimpleUploadedFile("m.nii.gz", mask_bytes((1, 1, 1))), "parent": "", "lesions": "[]"}

    response = csrf_browser(rater).post(f"/api/v1/assignments/{assignment.pk}/revisions/", body)

    assert response.status_code == 201, response.content[:300]
