"""The annotation services: assigning, unassigning, reopening, submitting, saving and restoring."""

from __future__ import annotations

import hashlib

import pytest

from qsmreview import access
from qsmreview.annotations.models import Assignment, AssignmentEvent, Revision
from qsmreview.annotations.services import (
    RevisionConflict,
    assignment_create,
    assignment_reopen,
    assignment_submit,
    assignment_unassign,
    assignments_create_bulk,
    revision_create,
    revision_restore,
)
from qsmreview.errors import Conflict, Forbidden, NotFound, ValidationFailed
from qsmreview.studies.models import Session
from tests.annotations.conftest import mask_bytes, world_mm
from tests.fixtures.nifti import files_under

pytestmark = pytest.mark.django_db

SYSTEM = access.system("tests")
SUBMITTED = "this case is submitted; ask an admin to reopen it"


def save(by, assignment, *voxels, parent=None, lesions=(), active_seconds=0.0) -> Revision:
    return revision_create(
        by=by,
        assignment=assignment,
        mask_bytes=mask_bytes(*voxels),
        parent=parent,
        lesions=list(lesions),
        active_seconds=active_seconds,
    )


def events(assignment) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.by.username if e.by else e.by_label, e.reason)
        for e in AssignmentEvent.objects.filter(assignment=assignment)
    ]


def annotation_files(media_root) -> list:
    return files_under(media_root / "annotations")


# --- assigning -------------------------------------------------------------------------------


def test_it_assigns_once_and_records_who_assigned(session, rater, admin) -> None:
    first = assignment_create(by=admin, session=session, rater=rater)
    again = assignment_create(by=admin, session=session, rater=rater)

    assert again.pk == first.pk
    assert (first.status, first.active, first.assigned_by) == ("not_started", True, admin)
    assert events(first) == [("assigned", "admin", "")]


def test_it_reactivates_an_unassigned_case_with_its_revisions(assignment, admin, rater) -> None:
    revision = save(rater, assignment, (1, 1, 1))
    assignment_unassign(by=admin, assignment=assignment, force=True, reason="on leave")

    again = assignment_create(by=admin, session=assignment.session, rater=rater)

    assert again.pk == assignment.pk and again.active
    assert again.latest_revision_id == revision.pk
    assert [e[0] for e in events(assignment)] == ["assigned", "unassigned", "assigned"]


def test_it_assigns_every_session_to_every_rater_in_bulk_idempotently(study, session, rater, rater2, admin) -> None:
    second = Session.objects.create(subject=session.subject, label="02")

    created = assignments_create_bulk(by=admin, study=study, raters=[rater2, rater])
    again = assignments_create_bulk(by=admin, study=study, raters=[rater, rater2], sessions=[second])

    assert [(a.session.label, a.rater.username) for a in created] == [
        ("01", "rater1"), ("01", "rater2"), ("02", "rater1"), ("02", "rater2"),
    ]
    assert [a.pk for a in again] == [a.pk for a in created[2:]]
    assert AssignmentEvent.objects.count() == 4


def test_it_assigns_nothing_in_bulk_when_one_user_is_not_a_rater(study, session, rater, pi, admin) -> None:
    with pytest.raises(ValidationFailed, match="pi is not a rater of MS 7T QSM") as info:
        assignments_create_bulk(by=admin, study=study, raters=[rater, pi])

    assert info.value.field == "raters"
    assert not Assignment.objects.exists()


def test_it_refuses_a_session_of_another_study_in_bulk(study, other_session, rater, admin) -> None:
    with pytest.raises(ValidationFailed, match=f"session {other_session.pk} is not in") as info:
        assignments_create_bulk(by=admin, study=study, raters=[rater], sessions=[other_session])
    assert info.value.field == "sessions"


@pytest.mark.parametrize("who", ["rater", "pi", "other_admin", "outsider"])
def test_only_the_studys_admins_assign(request, who, session, rater) -> None:
    with pytest.raises(Forbidden, match="only the study's admins can assign cases"):
        assignment_create(by=request.getfixturevalue(who), session=session, rater=rater)
    assert not Assignment.objects.exists()


def test_the_system_assigns_and_is_named_in_the_trail(session, rater) -> None:
    assignment = assignment_create(by=SYSTEM, session=session, rater=rater)

    assert assignment.assigned_by is None
    assert events(assignment) == [("assigned", "system (tests)", "")]


# --- unassigning and reopening -----------------------------------------------------------------


def test_it_unassigns_a_case_without_work(assignment, admin, rater) -> None:
    assignment_unassign(by=admin, assignment=assignment)

    assignment.refresh_from_db()
    assert not assignment.active
    assert not access.assignments_visible_to(rater).filter(pk=assignment.pk).exists()
    assert events(assignment)[-1] == ("unassigned", "admin", "")


def test_it_refuses_to_unassign_saved_work_unless_forced_with_a_reason(assignment, admin, rater) -> None:
    save(rater, assignment, (1, 1, 1))

    with pytest.raises(Conflict, match=r"rater1 has saved work on this case \(1 revision\)"):
        assignment_unassign(by=admin, assignment=assignment)
    with pytest.raises(ValidationFailed, match="a reason is required") as info:
        assignment_unassign(by=admin, assignment=assignment, force=True, reason="  ")
    assert info.value.field == "reason"
    assert Assignment.objects.get(pk=assignment.pk).active

    assignment_unassign(by=admin, assignment=assignment, force=True, reason="rater left the study")

    assignment.refresh_from_db()
    assert not assignment.active
    assert assignment.revisions.count() == 1
    assert events(assignment)[-1] == ("unassigned", "admin", "rater left the study")


def test_it_reopens_only_a_submitted_case_with_a_reason(assignment, admin, rater) -> None:
    revision = save(rater, assignment, (1, 1, 1))
    with pytest.raises(Conflict, match="only a submitted case can be reopened; this one is in progress"):
        assignment_reopen(by=admin, assignment=assignment, reason="check")
    assignment_submit(by=rater, assignment=assignment, revision=revision)
    with pytest.raises(ValidationFailed, match="a reason is required to reopen a case"):
        assignment_reopen(by=admin, assignment=assignment, reason="")

    reopened = assignment_reopen(by=admin, assignment=assignment, reason="missed the cortex")

    assert (reopened.status, reopened.submitted_revision, reopened.submitted_at) == ("in_progress", None, None)
    assert events(assignment)[-2:] == [
        ("submitted", "rater1", "revision 1"),
        ("reopened", "admin", "missed the cortex"),
    ]
    save(rater, assignment, (1, 1, 1), (5, 5, 5), parent=revision)  # the rater can save again


@pytest.mark.parametrize("who", ["pi", "rater", "rater2"])
def test_only_admins_unassign_and_reopen(request, who, assignment) -> None:
    user = request.getfixturevalue(who)
    with pytest.raises(Forbidden):
        assignment_unassign(by=user, assignment=assignment)
    with pytest.raises(Forbidden):
        assignment_reopen(by=user, assignment=assignment, reason="x")


# --- submitting --------------------------------------------------------------------------------


def test_it_refuses_to_submit_before_a_save(assignment, rater) -> None:
    with pytest.raises(ValidationFailed, match="save first"):
        assignment_submit(by=rater, assignment=assignment, revision=None)


def test_it_submits_only_the_latest_revision_and_then_refuses_saves(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (1, 1, 1), (6, 6, 6), parent=r1)

    with pytest.raises(RevisionConflict, match="not the latest") as info:
        assignment_submit(by=rater, assignment=assignment, revision=r1)
    assert info.value.extra == {"latest_revision": r2.pk}

    submitted = assignment_submit(by=rater, assignment=assignment, revision=r2)

    assert (submitted.status, submitted.submitted_revision_id) == ("submitted", r2.pk)
    assert submitted.submitted_at is not None
    with pytest.raises(Conflict, match=SUBMITTED):
        save(rater, assignment, (2, 2, 2), parent=r2)
    with pytest.raises(Conflict, match=SUBMITTED):
        revision_restore(by=rater, revision=r1, parent=r2)
    with pytest.raises(Conflict, match="already submitted"):
        assignment_submit(by=rater, assignment=assignment, revision=r2)
    assert assignment.revisions.count() == 2


# --- saving ------------------------------------------------------------------------------------


def test_it_numbers_a_chain_of_saves_and_keeps_the_assignment_up_to_date(assignment, rater, study) -> None:
    r1 = save(rater, assignment, (1, 1, 1), active_seconds=30.5)
    r2 = save(rater, assignment, (1, 1, 1), (8, 8, 4), parent=r1, active_seconds=5000)
    r3 = save(rater, assignment, (8, 8, 4), parent=r2, active_seconds=-3)

    assert [(r.number, r.kind, r.parent_id) for r in (r1, r2, r3)] == [
        (1, "save", None), (2, "save", r1.pk), (3, "save", r2.pk),
    ]
    assert (r1.active_seconds, r2.active_seconds, r3.active_seconds) == (30.5, 3600.0, 0.0)
    assignment.refresh_from_db()
    assert assignment.latest_revision_id == r3.pk
    assert (assignment.status, assignment.lesion_count) == ("in_progress", 1)
    assert assignment.active_seconds == pytest.approx(30.5 + 3600.0)
    assert assignment.last_saved_at == r3.created_at
    assert r3.author == rater


def test_it_stores_the_canonical_file_with_its_checksum(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))

    with r1.file.open("rb") as fh:
        content = fh.read()
    assert r1.sha256 == hashlib.sha256(content).hexdigest()
    assert r1.size_bytes == len(content)
    assert r1.file.name.startswith(f"annotations/{assignment.session.subject.study_id}/session-")


def test_it_measures_and_numbers_lesions_keeping_numbers_never_reused(assignment, rater) -> None:
    # one voxel at (1,1,1) and a 2x2x2 cube at (8..9, 8..9, 4..5): 0.25 and 2 mm^3
    cube = [(i, j, k) for i in (8, 9) for j in (8, 9) for k in (4, 5)]
    r1 = save(rater, assignment, (1, 1, 1), *cube, lesions=[
        {"number": 1, "anchor_mm": world_mm(1, 1, 1), "vote": "wm", "confidence": 3, "note": ""},
    ])
    assert [(x["number"], x["voxels"], x["volume_mm3"], x["below_min_size"], x["vote"]) for x in r1.lesions] == [
        (1, 1, 0.25, True, "wm"),
        (2, 8, 2.0, True, ""),  # a 2 mm sphere is 4.19 mm^3
    ]
    # lesion 1 erased, lesion 2 kept, a new one drawn: it is 3, not 1
    r2 = save(rater, assignment, *cube, (0, 0, 7), parent=r1, lesions=[
        {"number": 2, "anchor_mm": world_mm(8, 8, 4), "vote": "cortical", "confidence": None, "note": "juxta"},
    ])
    assert [(x["number"], x["vote"]) for x in r2.lesions] == [(2, "cortical"), (3, "")]


def test_a_stale_save_is_kept_as_a_conflict_copy_and_refused(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (1, 1, 1), (2, 2, 2), parent=r1)  # the other tab

    with pytest.raises(RevisionConflict, match="kept as revision") as info:
        save(rater, assignment, (1, 1, 1), (9, 9, 5), parent=r1)

    copy = Revision.objects.get(kind="conflict")
    assert info.value.status == 409
    assert info.value.extra == {"latest_revision": r2.pk, "conflict_revision": copy.pk}
    assert (copy.number, copy.parent_id) == (3, r1.pk)
    assert copy.file.storage.exists(copy.file.name)
    assignment.refresh_from_db()
    assert assignment.latest_revision_id == r2.pk
    assert assignment.lesion_count == 2
    assert sorted(Revision.objects.values_list("number", "kind")) == [(1, "save"), (2, "save"), (3, "conflict")]


def test_a_first_save_when_another_tab_saved_already_is_a_conflict(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))

    with pytest.raises(RevisionConflict) as info:
        save(rater, assignment, (2, 2, 2), parent=None)

    assert info.value.extra["latest_revision"] == r1.pk


def test_it_restores_as_a_new_revision_with_the_same_bytes(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1), lesions=[{"number": 1, "anchor_mm": world_mm(1, 1, 1), "vote": "wm"}])
    r2 = save(rater, assignment, (3, 3, 3), (1, 1, 1), parent=r1)

    r3 = revision_restore(by=rater, revision=r1, parent=r2)

    assert (r3.number, r3.kind, r3.restored_from_id, r3.parent_id) == (3, "restore", r1.pk, r2.pk)
    assert (r3.sha256, r3.size_bytes, r3.lesions) == (r1.sha256, r1.size_bytes, r1.lesions)
    with r3.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == r1.sha256
    assignment.refresh_from_db()
    assert (assignment.latest_revision_id, assignment.lesion_count) == (r3.pk, 1)


def test_a_stale_restore_is_refused_without_a_copy(assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    r2 = save(rater, assignment, (3, 3, 3), parent=r1)

    with pytest.raises(RevisionConflict) as info:
        revision_restore(by=rater, revision=r1, parent=r1)

    assert info.value.extra == {"latest_revision": r2.pk, "conflict_revision": None}
    assert assignment.revisions.count() == 2


@pytest.mark.parametrize(
    ("upload", "lesions", "field", "message"),
    [
        (lambda: mask_bytes(shape=(16, 20, 6)), [], "mask", r"mask shape 16x20x6 is not the T2\* grid 16x20x8"),
        (lambda: b"not an image", [], "mask", "not a NIfTI file"),
        (lambda: mask_bytes((1, 1, 1)), [{"number": 4, "anchor_mm": world_mm(5, 5, 5)}], "lesions", "lesion 4: anchor"),
        (lambda: mask_bytes((1, 1, 1)), {"number": 1}, "lesions", "lesions must be a list"),
    ],
)
def test_a_refused_save_stores_no_file_and_no_row(assignment, rater, media_root, upload, lesions, field, message) -> None:
    with pytest.raises(ValidationFailed, match=message) as info:
        revision_create(by=rater, assignment=assignment, mask_bytes=upload(), parent=None, lesions=lesions)

    assert info.value.field == field
    assert not Revision.objects.exists()
    assert annotation_files(media_root) == []


def test_a_failed_commit_deletes_the_stored_file(assignment, rater, media_root, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Revision, "save", boom)

    with pytest.raises(RuntimeError, match="database went away"):
        save(rater, assignment, (1, 1, 1))

    assert annotation_files(media_root) == []
    assignment.refresh_from_db()
    assert assignment.latest_revision_id is None


def test_it_refuses_a_parent_of_another_case(assignment, rater, rater2, admin, session) -> None:
    other = assignment_create(by=admin, session=session, rater=rater2)
    foreign = save(rater2, other, (1, 1, 1))

    with pytest.raises(ValidationFailed, match="not of this case") as info:
        save(rater, assignment, (1, 1, 1), parent=foreign)
    assert info.value.field == "parent"


# --- who may save ------------------------------------------------------------------------------


def test_another_rater_does_not_find_the_case(assignment, rater2, admin, session) -> None:
    assignment_create(by=admin, session=session, rater=rater2)  # rater2 sees the session, not the case

    with pytest.raises(NotFound, match="no such assignment"):
        save(rater2, assignment, (1, 1, 1))


@pytest.mark.parametrize("who", ["admin", "pi", "superuser"])
def test_admins_and_the_pi_read_but_never_draw(request, who, assignment, rater) -> None:
    r1 = save(rater, assignment, (1, 1, 1))
    user = request.getfixturevalue(who)

    with pytest.raises(Forbidden, match="only the assigned rater can change this annotation"):
        save(user, assignment, (1, 1, 1), parent=r1)
    with pytest.raises(Forbidden):
        revision_restore(by=user, revision=r1, parent=r1)
    with pytest.raises(Forbidden):
        assignment_submit(by=user, assignment=assignment, revision=r1)
    assert assignment.revisions.count() == 1


@pytest.mark.parametrize("who", ["other_admin", "outsider"])
def test_outsiders_do_not_find_the_case(request, who, assignment) -> None:
    with pytest.raises(NotFound):
        save(request.getfixturevalue(who), assignment, (1, 1, 1))


def test_an_unassigned_rater_can_no_longer_save(assignment, rater, admin) -> None:
    assignment_unassign(by=admin, assignment=assignment)

    with pytest.raises(NotFound):
        save(rater, assignment, (1, 1, 1))


def test_the_system_may_save_for_the_demo(assignment) -> None:
    r1 = save(SYSTEM, assignment, (1, 1, 1))

    assert r1.author is None and r1.kind == "save"


# --- orphan files ------------------------------------------------------------------------------


def test_the_orphan_sweep_deletes_annotation_files_with_no_revision(assignment, rater, media_root) -> None:
    import os
    import time
    from datetime import timedelta

    from django.db import transaction

    from qsmreview.studies.services.orphans import storage_sweep_orphans

    kept = save(rater, assignment, (1, 1, 1))
    restored = revision_restore(by=rater, revision=kept, parent=kept)  # shares kept's file

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():  # an enclosing transaction rolls back the row
        save(rater, assignment, (2, 2, 2), parent=restored)
        raise Boom
    (orphan,) = [p for p in annotation_files(media_root) if p.name != os.path.basename(kept.file.name)]
    young = storage_sweep_orphans()
    assert [os.path.basename(n) for n in young.too_young] == [orphan.name] and young.orphans == []

    then = time.time() - 2 * 3600
    for path in annotation_files(media_root):
        os.utime(path, (then, then))
    sweep = storage_sweep_orphans(grace=timedelta(hours=1))

    assert [os.path.basename(n) for n in sweep.orphans] == [orphan.name]
    assert sweep.referenced == 2  # the magnitude's file and the one mask file of two revisions
    assert [p.name for p in annotation_files(media_root)] == [os.path.basename(kept.file.name)]
    assert restored.file.storage.exists(restored.file.name)
