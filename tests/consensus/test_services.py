"""The consensus services on a session worked by hand (tests/consensus/conftest.py): the run, its
provenance and numbers, the triggers, the rights, and every decision and QC action."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.consensus.models import ConsensusDecision, ConsensusRun, MeasurementSet
from qsmreview.consensus.services import (
    consensus_adjudicate,
    consensus_decide_class,
    consensus_exclude,
    consensus_remeasure,
    consensus_remove_voxels,
    consensus_request,
    consensus_revert,
    consensus_run,
)
from qsmreview.errors import Conflict, Forbidden, NotFound, ValidationFailed
from qsmreview.jobs.models import Job
from tests.consensus.conftest import BRAIN, GRID, brain, rater_mask, save_and_submit, store, tissue

pytestmark = pytest.mark.django_db


def rows_of(run: ConsensusRun) -> dict[int, object]:
    return {r.lesion: r for r in run.measurement_sets.get(current=True).rows.all()}


@pytest.fixture
def run(rated) -> ConsensusRun:
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


# --- the run ----------------------------------------------------------------------------------


def test_it_finds_the_majority_lesions_and_rejects_the_single_raters_mark(run):
    candidates = {c.number: (c.status, c.raters, c.n_voxels, c.lesion) for c in run.candidates.all()}

    assert sorted(candidates.values(), key=str) == sorted(
        [
            ("lesion", ["rater1", "rater2", "rater3"], 27, 1),  # A: rater3's extra voxel is not majority
            ("lesion", ["rater1", "rater2"], 27, 2),  # B: 2 of 3
            ("rejected", ["rater2"], 8, None),  # C: 1 of 3
        ],
        key=str,
    )


def test_it_measures_relative_susceptibility_against_the_reference_worked_by_hand(run):
    rows = rows_of(run)

    assert set(rows) == {1, 2}
    a, b = rows[1], rows[2]
    assert (a.lesion_type, a.portion, a.n_voxels, a.volume_mm3, a.cortical_fraction) == ("wm", "wm", 27, 27.0, 0.0)
    # QSM is 0.10 ppm in A, 0.05 in B, 0.02 everywhere else in the brain (float32 values)
    assert a.lesion_mean_ppm == pytest.approx(0.10, abs=1e-6) and a.lesion_sd_ppm == pytest.approx(0.0, abs=1e-6)
    assert a.reference_mean_ppm == pytest.approx(0.02, abs=1e-6) and a.reference_n_voxels > 0
    assert a.relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)
    assert b.relative_susceptibility_ppm == pytest.approx(0.03, abs=1e-6)
    assert a.raters == ["rater1", "rater2", "rater3"] and b.raters == ["rater1", "rater2"]
    assert a.rule_type == "wm" and a.extras["vote_majority"] == "wm" and a.extras["class_disagreement"] is False


def test_it_measures_each_raters_own_lesions_worked_by_hand(run):
    rows = {(r.rater, r.lesion): r for r in run.rater_rows.all()}

    candidates = {c.lesion: c.number for c in run.candidates.all() if c.lesion}
    by_rater = {name: sorted(lesion for rater, lesion in rows if rater == name) for name in ("rater1", "rater2", "rater3")}
    assert by_rater == {"rater1": [1, 2], "rater2": [1, 2, 3], "rater3": [1]}
    assert run.summary["rater_lesions"] == {"rater1": 2, "rater2": 3, "rater3": 1}
    # rater1: A (0.10 vs 0.02) and B (0.05 vs 0.02), numbered in C order of their first voxel.
    assert rows[("rater1", 1)].relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)
    assert rows[("rater1", 2)].relative_susceptibility_ppm == pytest.approx(0.03, abs=1e-6)
    assert rows[("rater1", 1)].extras["candidate"] == candidates[1]
    # rater2's C (8 voxels at 0.02 in white matter at 0.02): a lesion of its own, nothing relative.
    c = rows[("rater2", 2)]
    assert (c.n_voxels, c.lesion_type) == (8, "wm") and c.relative_susceptibility_ppm == pytest.approx(0.0, abs=1e-6)
    # rater3's A holds the extra voxel at 0.02: (27 x 0.10 + 0.02) / 28 - 0.02.
    a3 = rows[("rater3", 1)]
    assert a3.n_voxels == 28 and a3.relative_susceptibility_ppm == pytest.approx((27 * 0.10 + 0.02) / 28 - 0.02, abs=1e-6)


def test_it_states_agreement_per_rater_pair_and_against_the_consensus(run):
    pairs = {(p["reference"], p["tested"]): p for p in run.agreement["pairs"]}
    vs = {p["tested"]: p for p in run.agreement["vs_consensus"]}

    # rater1 {A, B} vs rater2 {A, B, C}: sensitivity 1, PPV 2/3, F1 = 2 * 2/3 / (5/3) = 0.8
    assert pairs[("rater1", "rater2")]["f1"] == pytest.approx(0.8)
    assert pairs[("rater2", "rater3")]["f1"] == pytest.approx(0.5)  # 1 of 3 found, PPV 1
    # rater3 (A + 1 voxel = 28) vs consensus (A + B = 54), overlap 27: Dice 54 / 82
    assert vs["rater3"]["dice"] == pytest.approx(54 / 82)
    assert vs["rater1"]["f1"] == pytest.approx(1.0)
    assert run.agreement["parameters"]["alpha"] == pytest.approx(0.1)


def test_it_records_the_exact_inputs_parameters_and_code_version(run, rated):
    submitted = {name: a.submitted_revision for name, a in ((n, type(a).objects.get(pk=a.pk)) for n, a in rated.assignments.items())}

    assert [(r["rater"], r["revision"], r["sha256"]) for r in run.revisions] == [
        (name, submitted[name].pk, submitted[name].sha256) for name in ("rater1", "rater2", "rater3")
    ]
    assert (run.tissue_series_id, run.tissue_version, run.tissue_sha256) == (rated.tissue.pk, 1, rated.tissue.sha256)
    assert (run.qsm_series_id, run.qsm_version, run.qsm_sha256) == (rated.qsm.pk, 1, rated.qsm.sha256)
    assert run.brain_mask_sha256 == rated.brain_mask.sha256
    assert run.params["qsm_erosion_mm"] == 2.5 and run.params["min_lesion_diameter_mm"] == 2.0
    assert run.code_version["numpy"] == np.__version__
    assert run.status == "succeeded" and run.current


def test_it_measures_qsm_in_the_brain_mask_eroded_by_2_5_mm():
    from qsmreview.consensus.compute import qsm_mask_of

    eroded = qsm_mask_of(brain() > 0, np.zeros(GRID, np.float32), (1.0, 1.0, 1.0))

    expected = np.zeros(GRID, bool)
    expected[4:28, 4:28, 4:12] = True  # 3 mm from the outside is kept, 2 mm is not
    assert np.array_equal(eroded, expected)


def test_it_stores_label_maps_on_the_t2star_grid_with_their_checksums(run):
    import hashlib

    from qsmreview.consensus.services import load_labels_and_affine

    measurements = run.measurement_sets.get(current=True)
    lesions, affine = load_labels_and_affine(measurements.lesion_labels)
    reference = load_labels_and_affine(measurements.reference_labels)[0]

    assert lesions.shape == GRID and np.array_equal(affine, np.eye(4))
    assert (lesions == 1).sum() == 27 and (lesions == 2).sum() == 27 and lesions[13, 10, 6] == 0
    assert set(np.unique(reference)) == {0, 11, 21}  # 10 x lesion + 1: WM reference ROIs
    assert not np.any(reference[10:13, 10:13, 6:9])
    with measurements.lesion_labels.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == measurements.lesion_labels_sha256


def test_it_keeps_the_old_run_when_it_computes_again(run, rated):
    again = consensus_run(by=rated.admin, session=rated.session, trigger="again")

    run.refresh_from_db()
    assert again.current and not run.current
    assert ConsensusRun.objects.filter(session=rated.session).count() == 2
    assert run.measurement_sets.count() == 1


# --- requesting and triggers --------------------------------------------------------------------


def test_it_refuses_a_consensus_with_fewer_than_two_submitted_raters(inputs_session, assigned, admin, rater):
    session = inputs_session[0]
    save_and_submit(rater, assigned["rater1"], rater_mask("rater1"))

    with pytest.raises(ValidationFailed, match="1 rater\\(s\\) submitted; the consensus needs at least 2"):
        consensus_request(by=admin, session=session)


def test_it_refuses_a_consensus_without_tissue_labels(session, admin, rater, rater2):
    from qsmreview.annotations.services import assignment_create

    store(session, admin, "t2star_mag", np.full(GRID, 100.0, np.float32))
    for user in (rater, rater2):
        save_and_submit(user, assignment_create(by=admin, session=session, rater=user), rater_mask("rater1"))

    with pytest.raises(ValidationFailed, match="no tissue labels \\(CSF/GM/WM\\); run tissue classification first"):
        consensus_request(by=admin, session=session)
    assert not Job.objects.filter(kind="consensus").exists()  # the last submission queued nothing either


def test_it_refuses_a_consensus_when_the_tissue_labels_are_off_the_t2star_grid(rated):
    store(rated.session, rated.admin, "t2star_mag", np.full((24, 24, 12), 100.0, np.float32))  # a new grid

    with pytest.raises(ValidationFailed, match=f"the tissue labels \\(series {rated.tissue.pk}\\) is not on the session's T2\\* grid"):
        consensus_request(by=rated.admin, session=rated.session)


def test_it_refuses_a_pi_and_hides_the_consensus_from_raters(rated, pi, rater):
    with pytest.raises(Forbidden, match="only the study's admins can compute the consensus"):
        consensus_request(by=pi, session=rated.session)
    with pytest.raises(NotFound):
        consensus_request(by=rater, session=rated.session)  # assigned to them, and still absent


def test_it_queues_the_consensus_when_the_last_assigned_rater_submits(inputs_session, assigned, rater, rater2, rater3):
    for user, name in ((rater, "rater1"), (rater2, "rater2")):
        save_and_submit(user, assigned[name], rater_mask(name))
    assert not Job.objects.filter(kind="consensus").exists()

    save_and_submit(rater3, assigned["rater3"], rater_mask("rater3"))

    job = Job.objects.get(kind="consensus")
    assert (job.session_id, job.status, job.parameters["trigger"]) == (
        inputs_session[0].pk, "queued", "every assigned rater submitted")


def test_it_refuses_a_second_request_on_the_same_inputs_while_one_is_queued(rated):
    assert Job.objects.filter(kind="consensus", status="queued").count() == 1  # the submission's

    with pytest.raises(Conflict, match="already queued"):
        consensus_request(by=rated.admin, session=rated.session)


def test_it_queues_a_new_consensus_when_an_admin_changes_an_input(run, rated):
    Job.objects.filter(kind="consensus").update(status="succeeded")
    labels = tissue()
    labels[BRAIN][:, :, :2] = 2  # some cortex

    store(rated.session, rated.admin, "tissue", labels)

    job = Job.objects.get(kind="consensus", status="queued")
    assert job.parameters["trigger"] == "Tissue labels (CSF/GM/WM) changed"


# --- decisions and QC -------------------------------------------------------------------------


def test_it_records_a_class_decision_and_keeps_the_rules_class(run, rated):
    decision = consensus_decide_class(by=rated.admin, run=run, lesion=1, lesion_type="mixed", reason="rim of cortex")

    rows = rows_of(run)
    assert (rows[1].lesion_type, rows[1].rule_type) == ("mixed", "wm")
    assert (rows[2].lesion_type, rows[2].rule_type) == ("wm", "wm")
    assert (decision.who, decision.reason, decision.value) == ("admin", "rim of cortex", {"class": "mixed"})
    assert list(run.measurement_sets.values_list("number", "current")) == [(2, True), (1, False)]


def test_it_measures_a_lesion_in_the_tissue_of_its_decided_class(run, rated):
    consensus_decide_class(by=rated.admin, run=run, lesion=1, lesion_type="cortical", reason="juxtacortical")

    (row,) = run.measurement_sets.get(current=True).rows.filter(lesion=1)
    # The session is all white matter: decided cortical, lesion A has no GM voxel to measure.
    assert (row.lesion_type, row.rule_type, row.portion, row.n_voxels) == ("cortical", "wm", "cortical", 0)
    assert row.relative_susceptibility_ppm is None and row.extras["reference_flag"] == "empty"
    assert rows_of(run)[2].relative_susceptibility_ppm == pytest.approx(0.03, abs=1e-6)


def test_it_measures_an_adjudicated_candidate_as_a_lesion_of_its_raters_marks(
    inputs_session, assigned, admin, rater, rater2, rater3
):
    left = (slice(22, 24), slice(8, 11), slice(6, 9))  # rater1: 18 voxels
    right = (slice(24, 26), slice(8, 11), slice(6, 9))  # rater3: the next 18, none shared
    masks = {name: rater_mask(name) for name in ("rater1", "rater2", "rater3")}
    masks["rater1"][left] = 1
    masks["rater3"][right] = 1
    for name, user in (("rater1", rater), ("rater2", rater2), ("rater3", rater3)):
        save_and_submit(user, assigned[name], masks[name])
    run = consensus_run(by=admin, session=inputs_session[0], trigger="test")
    pending = run.candidates.get(status="adjudication")
    assert pending.raters == ["rater1", "rater3"] and set(rows_of(run)) == {1, 2}

    consensus_adjudicate(by=admin, run=run, candidate=pending.number, include=True, reason="both saw it")

    rows = rows_of(run)
    new = rows[3]  # numbered after lesions 1 and 2
    assert (new.n_voxels, new.lesion_type, new.raters, new.extras["adjudicated"]) == (36, "wm", ["rater1", "rater3"], True)
    # QSM is 0.02 ppm in all of the brain outside A and B: no contrast to its WM reference.
    assert new.relative_susceptibility_ppm == pytest.approx(0.0, abs=1e-6) and new.reference_n_voxels > 0
    assert rows[1].relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)
    consensus_exclude(by=admin, run=run, lesion=3, reason_code="artifact", reason="a fold")  # decided on like any
    assert rows_of(run)[3].excluded is True


def test_it_excludes_a_lesion_and_restores_it_with_the_audit_trail(run, rated):
    exclusion = consensus_exclude(by=rated.admin, run=run, lesion=2, reason_code="vessel", reason="a vein on QSM")
    assert (rows_of(run)[2].excluded, rows_of(run)[2].exclusion_reason) == (True, "vessel")
    assert rows_of(run)[1].excluded is False

    revert = consensus_revert(by=rated.admin, decision=exclusion, reason="not a vein")

    assert rows_of(run)[2].excluded is False
    assert revert.reverts_id == exclusion.pk
    assert run.measurement_sets.count() == 3  # set 1, excluded, restored: all kept
    with pytest.raises(Conflict, match="already reverted"):
        consensus_revert(by=rated.admin, decision=exclusion, reason="again")


def test_it_removes_voxels_from_a_lesion_and_measures_again(run, rated):
    slab = [[12, j, k] for j in range(10, 13) for k in range(6, 9)]  # one face of A: 9 voxels

    decision = consensus_remove_voxels(by=rated.admin, run=run, target="lesion", lesion=1, voxels=slab, reason="vessel")

    a = rows_of(run)[1]
    assert (a.n_voxels, a.volume_mm3) == (18, 18.0)
    assert a.relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)
    consensus_revert(by=rated.admin, decision=decision, reason="undo")
    assert rows_of(run)[1].n_voxels == 27


def test_it_removes_voxels_from_a_reference_roi(run, rated):
    from qsmreview.consensus.services import load_labels

    before = {k: r.reference_n_voxels for k, r in rows_of(run).items()}
    reference = load_labels(run.measurement_sets.get(current=True).reference_labels)
    roi = np.argwhere(reference == 11)[:5].tolist()

    consensus_remove_voxels(by=rated.admin, run=run, target="reference", voxels=roi, reason="a vein")

    after = {k: r.reference_n_voxels for k, r in rows_of(run).items()}
    assert after == {1: before[1] - 5, 2: before[2]}  # lesion B's ROI is untouched


def test_it_refuses_a_removal_that_removes_nothing(run, rated):
    with pytest.raises(ValidationFailed, match="none of these voxels is in lesion 1 now"):
        consensus_remove_voxels(by=rated.admin, run=run, target="lesion", lesion=1, voxels=[[0, 0, 0]], reason="x")
    assert not ConsensusDecision.objects.exists()


def test_it_refuses_adjudicating_a_candidate_the_rule_decided(run, rated):
    rejected = run.candidates.get(status="rejected")

    with pytest.raises(ValidationFailed, match="not left to adjudication"):
        consensus_adjudicate(by=rated.admin, run=run, candidate=rejected.number, include=True, reason="x")


@pytest.mark.parametrize("who, error", [("pi", Forbidden), ("rater", NotFound), ("outsider", NotFound)])
def test_it_lets_only_admins_decide(run, request, who, error):
    user = request.getfixturevalue(who)

    with pytest.raises(error):
        consensus_exclude(by=user, run=run, lesion=1, reason_code="artifact", reason="x")
    with pytest.raises(error):
        consensus_remeasure(by=user, run=run)
    assert not ConsensusDecision.objects.exists() and MeasurementSet.objects.count() == 1


def test_it_needs_a_reason_and_a_known_lesion(run, rated):
    with pytest.raises(ValidationFailed, match="a reason is required"):
        consensus_exclude(by=rated.admin, run=run, lesion=1, reason_code="vessel", reason="  ")
    with pytest.raises(ValidationFailed, match="has no lesion 9"):
        consensus_decide_class(by=rated.admin, run=run, lesion=9, lesion_type="wm", reason="x")
