"""The viewer's QC edits on the session worked by hand (tests/consensus/conftest.py): vessel
proposals stored and counted per lesion, a drawn mask removing voxels, voxels added to a reference
ROI under the ROI rules, a lesion's proposed vessel voxels removed on request; each reversible."""

from __future__ import annotations

import base64
import gzip

import nibabel as nib
import numpy as np
import pytest
from django.test import Client

from qsmreview.consensus.models import ConsensusDecision, ConsensusRun, DecisionKind
from qsmreview.consensus.qc_edits import (
    consensus_add_reference_voxels,
    consensus_apply_vessel_proposals,
    consensus_edit_voxels,
    load_vessel_proposals,
)
from qsmreview.consensus.qc_maps import store_vessel_proposals
from qsmreview.consensus.selectors import qc_lesions
from qsmreview.consensus.services import consensus_remove_voxels, consensus_revert, consensus_run, load_labels
from qsmreview.errors import Forbidden, NotFound, ValidationFailed
from tests.api.world import as_bytes, client_for
from tests.consensus.conftest import AFFINE, GRID, mask_bytes

pytestmark = pytest.mark.django_db


def rows_of(run: ConsensusRun) -> dict[int, object]:
    return {r.lesion: r for r in run.measurement_sets.get(current=True).rows.all()}


def current_maps(run: ConsensusRun) -> tuple[np.ndarray, np.ndarray]:
    m = run.measurement_sets.get(current=True)
    return load_labels(m.lesion_labels), load_labels(m.reference_labels)


def drawn(*ijk: tuple[int, int, int]) -> np.ndarray:
    mask = np.zeros(GRID, np.uint8)
    for v in ijk:
        mask[v] = 1
    return mask


@pytest.fixture
def run(rated) -> ConsensusRun:
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


# --- vessel proposals --------------------------------------------------------------------------


def test_it_stores_the_vessel_proposals_on_the_t2star_grid_with_the_run(run):
    image = nib.Nifti1Image.from_bytes(gzip.decompress(run.vessel_proposals.open("rb").read()))

    assert image.shape == GRID and image.get_data_dtype() == np.uint8
    np.testing.assert_allclose(image.affine, AFFINE)
    # Uniform blocks have no tube: the phantom proposes nothing, as the run's summary counts.
    assert int(np.count_nonzero(np.asarray(image.dataobj))) == run.summary["vessel_proposal_voxels"] == 0
    assert len(run.vessel_proposals_sha256) == 64


def hand_proposals(run: ConsensusRun) -> None:
    """Proposals set by hand: 3 voxels of lesion A, 2 of its reference ROI 11, 1 elsewhere."""
    _, reference = current_maps(run)
    proposals = np.zeros(GRID, bool)
    proposals[10, 10, 6] = proposals[11, 10, 6] = proposals[12, 10, 6] = True
    for v in np.argwhere(reference == 11)[:2]:
        proposals[tuple(v)] = True
    proposals[3, 3, 3] = True
    stored: list[str] = []
    store_vessel_proposals(run, proposals, AFFINE, stored)


def test_it_counts_the_proposed_vessel_voxels_in_each_lesion_and_its_rois(run):
    hand_proposals(run)

    lesions = {e["lesion"]: e for e in qc_lesions(run, run.measurement_sets.get(current=True))}

    assert (lesions[1]["vessel_voxels_lesion"], lesions[1]["vessel_voxels_reference"]) == (3, 2)
    assert (lesions[2]["vessel_voxels_lesion"], lesions[2]["vessel_voxels_reference"]) == (0, 0)
    assert lesions[1]["centre_vox"] == [11, 11, 7] and lesions[1]["centre_mm"] == [11.0, 11.0, 7.0]
    assert lesions[2]["portions"][0]["roi"] == 21


def test_it_removes_a_lesions_proposed_vessel_voxels_only_when_asked_and_reverts(run, rated):
    hand_proposals(run)
    assert rows_of(run)[1].n_voxels == 27  # stored proposals change nothing by themselves

    decision = consensus_apply_vessel_proposals(by=rated.admin, run=run, lesion=1, target="lesion", reason="a vein")

    assert decision.kind == DecisionKind.REMOVE_VOXELS
    assert sorted(decision.value["voxels"]) == [[10, 10, 6], [11, 10, 6], [12, 10, 6]]
    assert rows_of(run)[1].n_voxels == 24
    consensus_revert(by=rated.admin, decision=decision, reason="undo")
    assert rows_of(run)[1].n_voxels == 27


def test_it_removes_proposed_vessel_voxels_from_a_lesions_reference_rois(run, rated):
    hand_proposals(run)
    before = rows_of(run)[1].reference_n_voxels

    consensus_apply_vessel_proposals(by=rated.admin, run=run, lesion=1, target="reference", reason="a vein")

    assert rows_of(run)[1].reference_n_voxels == before - 2
    with pytest.raises(ValidationFailed, match="no proposed vessel voxel lies in lesion 2 now: nothing to remove"):
        consensus_apply_vessel_proposals(by=rated.admin, run=run, lesion=2, target="lesion", reason="a vein")


def test_a_run_without_proposals_says_so(run, rated):
    run.vessel_proposals = ""
    run.save(update_fields=["vessel_proposals"])
    assert load_vessel_proposals(run) is None
    with pytest.raises(ValidationFailed, match="has no vessel proposals"):
        consensus_apply_vessel_proposals(by=rated.admin, run=run, lesion=1, target="lesion", reason="a vein")


# --- a drawn mask --------------------------------------------------------------------------------


def test_a_drawn_mask_removes_only_the_lesions_voxels_under_it(run, rated):
    # A 2 x 2 patch on slice 6 over A's corner (10..11, 10..11) and two voxels outside A.
    mask = drawn((10, 10, 6), (11, 10, 6), (10, 11, 6), (11, 11, 6), (9, 10, 6), (9, 11, 6))

    decision = consensus_edit_voxels(
        by=rated.admin, run=run, operation="remove", target="lesion", lesion=1, mask_bytes=mask_bytes(mask), reason="vein"
    )

    assert sorted(decision.value["voxels"]) == [[10, 10, 6], [10, 11, 6], [11, 10, 6], [11, 11, 6]]
    lesions, _ = current_maps(run)
    assert np.count_nonzero(lesions == 1) == 23
    assert rows_of(run)[1].n_voxels == 23


@pytest.mark.parametrize(
    ("data", "affine", "message"),
    [
        (np.zeros((8, 8, 8), np.uint8), AFFINE, "mask shape 8x8x8 is not the T2* grid 32x32x16"),
        (drawn((10, 10, 6)), np.diag([-1.0, 1.0, 1.0, 1.0]), "is not the T2* grid's"),
        (np.zeros(GRID, np.uint8), AFFINE, "the drawn mask is empty: draw over the voxels first"),
        (drawn((0, 0, 0)), AFFINE, "none of the drawn voxels is in lesion 1 now: nothing to remove"),
    ],
)
def test_it_refuses_a_mask_off_the_grid_or_empty(run, rated, data, affine, message):
    raw = gzip.compress(nib.Nifti1Image(data, affine).to_bytes(), mtime=0)
    with pytest.raises(ValidationFailed, match=message.replace("*", r"\*")):
        consensus_edit_voxels(
            by=rated.admin, run=run, operation="remove", target="lesion", lesion=1, mask_bytes=raw, reason="x"
        )
    assert not ConsensusDecision.objects.exists()


def test_only_admins_edit_voxels(run, rated, pi, rater):
    raw = mask_bytes(drawn((10, 10, 6)))
    with pytest.raises(Forbidden):
        consensus_edit_voxels(by=pi, run=run, operation="remove", target="lesion", lesion=1, mask_bytes=raw, reason="x")
    with pytest.raises(NotFound):
        consensus_edit_voxels(by=rater, run=run, operation="remove", target="lesion", lesion=1, mask_bytes=raw, reason="x")


# --- adding voxels to a reference ROI ----------------------------------------------------------------

#: White matter on slice 5, 7.1 voxels or more from lesion A (10..12, 10..12, 6..8), in no ROI.
ADDED = ((5, 5, 5), (6, 5, 5), (5, 6, 5), (6, 6, 5))


def test_it_adds_voxels_to_a_reference_roi_and_measures_again(run, rated):
    before = rows_of(run)[1].reference_n_voxels

    decision = consensus_edit_voxels(
        by=rated.admin, run=run, operation="add", target="reference", roi=11, mask_bytes=mask_bytes(drawn(*ADDED)),
        reason="more normal-appearing WM",
    )

    assert decision.kind == DecisionKind.ADD_VOXELS and decision.lesion == 1
    assert decision.value == {"target": "reference", "roi": 11, "voxels": sorted([list(v) for v in ADDED])}
    _, reference = current_maps(run)
    assert all(reference[v] == 11 for v in ADDED)
    after = rows_of(run)
    assert after[1].reference_n_voxels == before + 4
    assert after[1].relative_susceptibility_ppm == pytest.approx(0.08, abs=1e-6)  # WM is 0.02 ppm everywhere
    browser = Client()
    browser.force_login(rated.admin)
    page = browser.get(f"/sessions/{rated.session.pk}/consensus/qc/")
    assert "Add voxels lesion 1: 4 voxel(s) to reference ROI 11" in page.content.decode()
    consensus_revert(by=rated.admin, decision=decision, reason="undo")
    assert rows_of(run)[1].reference_n_voxels == before


@pytest.mark.parametrize(
    ("voxel", "message"),
    [
        ((1, 1, 5), "1 voxel(s) are not white matter (FAST 3), the tissue of ROI 11 (first [1, 1, 5])"),
        ((11, 11, 7), "1 voxel(s) are inside a consensus lesion (first [11, 11, 7])"),
        ((13, 11, 7), "1 voxel(s) are within the 2-voxel gap around a consensus lesion (first [13, 11, 7])"),
    ],
)
def test_it_refuses_added_voxels_the_roi_rules_forbid(run, rated, voxel, message):
    with pytest.raises(ValidationFailed) as exc:
        consensus_add_reference_voxels(by=rated.admin, run=run, roi=11, voxels=drawn(voxel, ADDED[0]) > 0, reason="x")
    assert exc.value.message == message + "; nothing was added to ROI 11"
    assert not ConsensusDecision.objects.exists()


def test_it_refuses_voxels_of_another_roi_and_an_unknown_roi(run, rated):
    _, reference = current_maps(run)
    theirs = tuple(int(c) for c in np.argwhere(reference == 21)[0])
    with pytest.raises(ValidationFailed, match="belong to another reference ROI"):
        consensus_add_reference_voxels(by=rated.admin, run=run, roi=11, voxels=drawn(theirs) > 0, reason="x")
    with pytest.raises(ValidationFailed, match="13 is not a reference ROI id"):
        consensus_add_reference_voxels(by=rated.admin, run=run, roi=13, voxels=drawn(ADDED[0]) > 0, reason="x")
    with pytest.raises(ValidationFailed, match="lesion 1 has no cortical portion now: its reference ROI is 11"):
        consensus_add_reference_voxels(by=rated.admin, run=run, roi=12, voxels=drawn(ADDED[0]) > 0, reason="x")
    with pytest.raises(ValidationFailed, match="has no lesion 9"):
        consensus_add_reference_voxels(by=rated.admin, run=run, roi=91, voxels=drawn(ADDED[0]) > 0, reason="x")
    with pytest.raises(ValidationFailed, match="voxels can be added to a reference ROI only"):
        consensus_edit_voxels(
            by=rated.admin, run=run, operation="add", target="lesion", lesion=1, roi=11,
            mask_bytes=mask_bytes(drawn(ADDED[0])), reason="x",
        )


# --- through the API -------------------------------------------------------------------------------


def test_the_api_takes_a_drawn_mask_in_base64_and_lists_the_new_set(run, rated):
    client = client_for(rated.admin)
    mask = base64.b64encode(mask_bytes(drawn((10, 10, 6), (9, 10, 6)))).decode()

    response = client.post(f"/api/v1/consensus/{run.pk}/voxel-edits/", {
        "operation": "remove", "target": "lesion", "lesion": 1, "mask": mask, "reason": "a vein"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["value"] == {"target": "lesion", "voxels": [[10, 10, 6]]}
    qc = client.get(f"/api/v1/consensus/{run.pk}/qc/").json()
    assert (qc["set"], qc["current"], qc["vessel_proposals"]) == (2, True, True)
    assert [(e["lesion"], e["n_voxels"], e["vessel_voxels_lesion"]) for e in qc["lesions"]] == [(1, 26, 0), (2, 27, 0)]
    download = client.get(f"/api/v1/consensus/{run.pk}/vessel-proposals/")
    assert download.status_code == 200 and download["ETag"] == f'"{run.vessel_proposals_sha256}"'
    with run.vessel_proposals.open("rb") as fh:
        assert as_bytes(download) == fh.read()


def test_the_api_names_what_is_wrong_with_a_voxel_edit(run, rated):
    client = client_for(rated.admin)
    url = f"/api/v1/consensus/{run.pk}/voxel-edits/"

    not_base64 = client.post(url, {"operation": "remove", "target": "reference", "mask": "%%%", "reason": "x"}, format="json")
    add_forbidden = client.post(url, {
        "operation": "add", "target": "reference", "roi": 11, "reason": "x",
        "mask": base64.b64encode(mask_bytes(drawn((11, 11, 7)))).decode()}, format="json")

    assert not_base64.status_code == 400
    assert not_base64.json() == {"detail": "mask must be the NIfTI file's bytes in base64", "code": "invalid", "field": "mask"}
    assert add_forbidden.status_code == 400
    assert add_forbidden.json()["detail"] == (
        "1 voxel(s) are inside a consensus lesion (first [11, 11, 7]); nothing was added to ROI 11")


def test_an_added_roi_voxel_gives_way_to_a_lesion_voxel_restored_by_a_revert(run, rated):
    # Remove all of lesion A but its corner (12, 12, 8); add the former lesion voxel (10, 10, 6),
    # sqrt(12) = 3.5 voxels from that corner (beyond the gap), to ROI 11; then revert the removal:
    # the voxel is lesion again and not ROI.
    cube = [[i, j, k] for i in range(10, 13) for j in range(10, 13) for k in range(6, 9) if (i, j, k) != (12, 12, 8)]
    removal = consensus_remove_voxels(by=rated.admin, run=run, target="lesion", lesion=1, voxels=cube, reason="vein")
    consensus_add_reference_voxels(by=rated.admin, run=run, roi=11, voxels=drawn((10, 10, 6)) > 0, reason="WM")
    lesions, reference = current_maps(run)
    assert (lesions[10, 10, 6], reference[10, 10, 6]) == (0, 11)

    consensus_revert(by=rated.admin, decision=removal, reason="not a vein")

    lesions, reference = current_maps(run)
    assert (lesions[10, 10, 6], reference[10, 10, 6]) == (1, 0)
    assert np.count_nonzero(lesions == 1) == 27
    assert not np.any((lesions > 0) & (reference > 0))
