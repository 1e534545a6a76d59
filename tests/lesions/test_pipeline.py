"""analyse_session and remeasure: validation, the table against hand-computed values, QC edits,
and the synthetic head end to end (phantom truth -> three raters -> consensus -> measurements)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams
from qsmreview.lesions.pipeline import TABLE_COLUMNS, SessionAnalysis, analyse_session, remeasure
from qsmreview.lesions.qc import remove_voxels
from tests.lesions.factories import SHAPE, session



def by_portion(analysis: SessionAnalysis) -> dict[tuple[int, str], dict]:
    return {(r["lesion"], r["portion"]): r for r in analysis.rows}


def test_it_measures_each_lesion_and_portion_against_its_reference_by_hand() -> None:
    s = session()

    a = analyse_session(**s, subject="MS001", votes={"A": [((6, 6, 2), "wm"), ((21, 19, 2), "mixed")]})

    rows = by_portion(a)
    assert list(rows) == [(1, "wm"), (2, "cortical"), (2, "wm")]
    assert all(list(r) == list(TABLE_COLUMNS) for r in a.rows)
    wm = rows[(1, "wm")]
    assert (wm["subject"], wm["lesion_type"], wm["n_voxels"], wm["volume_mm3"]) == ("MS001", "wm", 9, 9.0)
    assert wm["cortical_fraction"] == 0.0 and wm["raters"] == ["A", "B", "C"]
    # Lesion: three 0.04, three 0.05, three 0.06 -> mean 0.05, SD sqrt(6e-4 / 8).
    assert wm["lesion_mean_ppm"] == pytest.approx(0.05, abs=1e-7)
    assert wm["lesion_sd_ppm"] == pytest.approx(math.sqrt(6e-4 / 8), rel=1e-4)
    # Reference: white matter at 0.01 only (the cortical band lies > 10 voxels away).
    assert wm["reference_mean_ppm"] == pytest.approx(0.01, abs=1e-7) and wm["reference_sd_ppm"] == pytest.approx(0.0, abs=1e-7)
    assert wm["relative_susceptibility_ppm"] == pytest.approx(0.04, abs=1e-6)
    assert wm["central_slice"] == 2 and wm["reference_roi"] == 11 and wm["reference_flag"] == ""
    assert wm["vote_majority"] == "wm" and wm["class_disagreement"] is False
    assert wm["centroid_ijk"] == [6.0, 6.0, 2.0]
    ctx, white = rows[(2, "cortical")], rows[(2, "wm")]
    assert ctx["lesion_type"] == white["lesion_type"] == "mixed" and ctx["cortical_fraction"] == 0.5
    assert ctx["raters"] == ["A", "B"] and (ctx["n_voxels"], white["n_voxels"]) == (8, 8)
    assert ctx["relative_susceptibility_ppm"] == pytest.approx(-0.03, abs=1e-6)  # -0.01 vs GM 0.02
    assert white["relative_susceptibility_ppm"] == pytest.approx(0.02, abs=1e-6)  # 0.03 vs WM 0.01
    assert (ctx["reference_roi"], white["reference_roi"]) == (22, 21)
    assert set(np.unique(a.reference_labels)) == {0, 11, 21, 22}
    assert a.lesion_labels.dtype == np.int32 and a.reference_labels.dtype == np.int32


def test_it_leaves_susceptibility_columns_empty_without_qsm() -> None:
    s = session()
    del s["qsm"]

    a = analyse_session(**s)

    for row in a.rows:
        assert all(row[c] is None for c in ("lesion_mean_ppm", "lesion_sd_ppm", "reference_mean_ppm",
                                             "reference_sd_ppm", "relative_susceptibility_ppm"))
        assert row["n_voxels"] > 0 and row["reference_n_voxels"] > 0
    assert a.vessel_proposals is None


def test_it_measures_inside_the_qsm_mask_and_reports_the_cut() -> None:
    s = session()
    mask = np.ones(SHAPE, bool)
    mask[5, 5:8, 2] = False  # the lesion's 0.04 row
    s["qsm"][5, 5:8, 2] = np.nan  # outside the mask NaN does not matter

    a = analyse_session(**s, qsm_mask=mask)

    wm = by_portion(a)[(1, "wm")]
    assert wm["measured_n_voxels"] == 6 and wm["n_voxels"] == 9
    assert wm["lesion_mean_ppm"] == pytest.approx(0.055, abs=1e-7)
    assert wm["qsm_mask_cut_fraction"] == pytest.approx(1 / 3, abs=1e-6)


def test_it_keeps_its_inputs_unchanged() -> None:
    s = session()
    copies = {k: {r: m.copy() for r, m in v.items()} if isinstance(v, dict) else np.copy(v) for k, v in s.items()}

    analyse_session(**s)

    for r, m in s["masks"].items():
        np.testing.assert_array_equal(m, copies["masks"][r])
    np.testing.assert_array_equal(s["tissue"], copies["tissue"])
    np.testing.assert_array_equal(s["qsm"], copies["qsm"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(masks={"A": s["masks"]["A"]}), "at least 2 raters"),
        (lambda s: s.update(tissue=s["tissue"][:, :, :4]), "tissue labels have shape"),
        (lambda s: s["tissue"].__setitem__((0, 0, 0), 7), "FSL FAST codes"),
        (lambda s: s["masks"]["A"].__setitem__((0, 0, 0), 3), "rater A: mask is not binary"),
        (lambda s: s.update(qsm=s["qsm"][:, :, :4]), "QSM has shape"),
        (lambda s: s["qsm"].__setitem__((0, 0, 0), np.nan), "NaN or infinite"),
        (lambda s: s.update(qsm_mask=np.full(SHAPE, 2, np.uint8)), "QSM mask is not binary"),
        (lambda s: s.update(voxel_size=(1.0, 0.0, 1.0)), "voxel size"),
        (lambda s: s.update(params=ConsensusParams(majority=4)), "majority 4 is more than the 3 raters"),
        (lambda s: s.update(votes={"A": [((0, 0, 0), "wm")]}), "not inside the rater's mask"),
    ],
)
def test_it_refuses_bad_input_with_a_clear_message(change, message: str) -> None:
    s = session()
    change(s)

    with pytest.raises(LesionInputError, match=message):
        analyse_session(**s)


def test_it_remeasures_after_excluding_a_lesion_and_removing_voxels() -> None:
    s = session()
    a = analyse_session(**s)
    drop = np.zeros(SHAPE, bool)
    drop[5, 5:8, 2] = True  # the 0.04 row of lesion 1

    edited = remeasure(a, s["tissue"], qsm=s["qsm"], lesion_labels=remove_voxels(a.lesion_labels, drop), excluded=[2])

    assert [(r["lesion"], r["portion"]) for r in edited.rows] == [(1, "wm")]
    wm = edited.rows[0]
    assert wm["n_voxels"] == 6 and wm["lesion_mean_ppm"] == pytest.approx(0.055, abs=1e-7)
    assert [c["status"] for c in edited.candidates] == ["lesion", "excluded"]
    assert not (edited.lesion_labels == 2).any() and not np.isin(edited.reference_labels, [21, 22]).any()
    assert (a.lesion_labels == 2).any()  # the original analysis is unchanged
    # Edited reference ROI given: kept as given (voxels removed), measured as is.
    ref = remove_voxels(a.reference_labels, a.reference_labels == 22)
    kept = remeasure(a, s["tissue"], qsm=s["qsm"], reference_labels=ref)
    assert by_portion(kept)[(2, "cortical")]["reference_flag"] == "empty"
    assert by_portion(kept)[(2, "wm")]["reference_n_voxels"] == by_portion(a)[(2, "wm")]["reference_n_voxels"]
    with pytest.raises(LesionInputError, match="no such lesion"):
        remeasure(a, s["tissue"], excluded=[9])


def test_it_summarises_the_session() -> None:
    text = analyse_session(**session(), subject="MS001").summary()

    assert text.startswith("subject MS001: 3 raters (A, B, C), 2 candidates: 2 lesion")
    assert "lesion F1 per pair" in text and "Fleiss' kappa" in text


def test_it_reports_progress_from_zero_to_one() -> None:
    seen: list[float] = []

    analyse_session(**session(), progress=lambda f, stage: seen.append(f))

    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


# ----------------------------------------------------------------------------- the phantom


@pytest.fixture(scope="module")
def phantom_session():
    from recon.phantom import make_phantom
    from qsmreview.lesions.synthetic import synthetic_ratings

    p = make_phantom((96, 96, 48), (1.2, 1.3, 2.0), te=(0.0177,), snr=50.0, seed=0)
    ratings = synthetic_ratings(p.lesions, p.lesion_types, allowed=p.brain_mask, seed=0)
    masks = {r.rater: r.mask for r in ratings}
    votes = {r.rater: [(les.anchor_voxel, les.vote) for les in r.lesions] for r in ratings}
    return p, masks, votes


def truth_signs(p, analysis: SessionAnalysis) -> list[tuple[dict, int, float]]:
    """(row, truth lesion, truth contrast of the row's portion) per row."""
    out = []
    for row in analysis.rows:
        ids = p.lesions[analysis.lesion_labels == row["lesion"]]
        truth = int(np.bincount(ids[ids > 0]).argmax())
        out.append((row, truth, p.lesion_contrast_ppm[truth]["gm" if row["portion"] == "cortical" else "wm"]))
    return out


def test_it_recovers_every_phantom_lesion_its_class_and_sign_from_the_truth_with_noise(phantom_session) -> None:
    p, masks, votes = phantom_session
    rng = np.random.default_rng(0)
    chi = p.chi_ppm + rng.normal(0.0, 0.01, p.chi_ppm.shape).astype(np.float32)

    a = analyse_session(masks, p.tissue, p.voxel_size, qsm=chi, qsm_mask=p.brain_mask, votes=votes, subject="PH")

    assert sum(c["status"] == "lesion" for c in a.candidates) == len(p.lesion_types)
    assert [c["status"] for c in a.candidates].count("rejected") == 1  # rater B's false positive
    rows = truth_signs(p, a)
    assert {t for _, t, _ in rows} == set(p.lesion_types)
    for row, truth, contrast in rows:
        kind = p.lesion_types[truth]
        assert row["lesion_type"] == kind or kind == "mixed", (row, kind)
        assert math.copysign(1, row["relative_susceptibility_ppm"]) == math.copysign(1, contrast), (row, contrast)
    assert {p.lesion_types[t] for row, t, _ in rows if row["lesion_type"] == "mixed"} == {"mixed"}
    assert a.agreement["class_votes"]["n_lesions"] == len(p.lesion_types) - 1  # rater A missed one


def test_it_recovers_the_sign_of_every_lesion_type_on_the_pipelines_qsm(phantom_session) -> None:
    from recon.pipeline import qsm

    p, masks, votes = phantom_session
    r = qsm(p.magnitude, p.phase, p.te[0], p.b0, p.voxel_size, affine=p.affine)

    a = analyse_session(masks, p.tissue, p.voxel_size, qsm=r.chi_ppm, qsm_mask=r.eroded_mask, votes=votes)

    by_kind: dict[tuple[str, str], list[float]] = {}
    right = 0
    rows = [x for x in truth_signs(p, a) if x[0]["relative_susceptibility_ppm"] is not None]
    for row, truth, contrast in rows:
        by_kind.setdefault((row["lesion_type"], row["portion"]), []).append(row["relative_susceptibility_ppm"])
        right += math.copysign(1, row["relative_susceptibility_ppm"]) == math.copysign(1, contrast)
    assert np.mean(by_kind[("wm", "wm")]) > 0.01
    assert np.mean(by_kind[("cortical", "cortical")]) < -0.005
    assert np.mean(by_kind[("mixed", "wm")]) > 0.005 and np.mean(by_kind[("mixed", "cortical")]) < 0
    assert right >= len(rows) - 1 and len(rows) >= 14
    assert a.vessel_proposals is not None and a.vessel_proposals.dtype == bool


def test_its_phantom_reference_rois_keep_every_rule(phantom_session) -> None:
    from scipy import ndimage

    p, masks, votes = phantom_session
    a = analyse_session(masks, p.tissue, p.voxel_size, qsm_mask=p.brain_mask, propose_vessels=False)

    marks = a.marked | (a.lesion_labels > 0)
    near_marks = ndimage.distance_transform_edt(~marks) <= 2.0
    assert not (a.reference_labels > 0)[near_marks].any()  # no lesion, mark or gap voxel
    assert a.reference_labels[~p.brain_mask].max() == 0
    for row in a.rows:
        roi = a.reference_labels == row["reference_roi"]
        code = 2 if row["portion"] == "cortical" else 3
        assert (p.tissue[roi] == code).all()
        assert set(np.argwhere(roi)[:, 2]) == {row["central_slice"]}
        k = row["central_slice"]
        section = a.lesion_labels[:, :, k] == row["lesion"]
        assert ndimage.distance_transform_edt(~section)[roi[:, :, k]].max() <= 10.0
        assert row["reference_n_voxels"] >= 20 or row["reference_flag"].startswith(("small", "empty"))
        body = (a.lesion_labels == row["lesion"]) & (p.tissue == code)
        areas = body.sum(axis=(0, 1))
        assert areas[k] == areas.max()  # the portion's largest cross-section


def test_it_measures_a_lesion_in_the_tissue_of_the_class_a_reviewer_decided() -> None:
    s = session()
    a = analyse_session(**s)

    decided = remeasure(a, s["tissue"], qsm=s["qsm"], class_overrides={2: "wm"})

    rows = by_portion(decided)
    assert list(rows) == [(1, "wm"), (2, "wm")]  # the mixed lesion now has its WM portion only
    white = rows[(2, "wm")]
    assert (white["lesion_type"], white["rule_type"]) == ("wm", "mixed")
    # Its 8 WM voxels at 0.03 against white matter at 0.01, as in the rule's WM portion.
    assert white["n_voxels"] == 8 and white["relative_susceptibility_ppm"] == pytest.approx(0.02, abs=1e-6)
    assert not np.isin(decided.reference_labels, [22]).any() and (decided.reference_labels == 21).any()
    assert rows[(1, "wm")]["rule_type"] == "wm" and not any(r["adjudicated"] for r in decided.rows)
    # Decided cortical: measured in its 8 GM voxels (-0.01) against cortex (0.02).
    ctx = by_portion(remeasure(a, s["tissue"], qsm=s["qsm"], class_overrides={2: "cortical"}))[(2, "cortical")]
    assert ctx["relative_susceptibility_ppm"] == pytest.approx(-0.03, abs=1e-6) and ctx["rule_type"] == "mixed"
    with pytest.raises(LesionInputError, match="not one of"):
        remeasure(a, s["tissue"], class_overrides={2: "grey"})
    with pytest.raises(LesionInputError, match="no such lesion"):
        remeasure(a, s["tissue"], class_overrides={7: "wm"})


def adjudication_session() -> dict:
    """The hand-built session plus a WM candidate that A and B mark without sharing a voxel:
    A draws x 10, 11 and B x 12, 13 of y 5..7 on slice 2 (12 voxels, QSM 0.03)."""
    s = session()
    s["masks"]["A"][10:12, 5:8, 2] = 1
    s["masks"]["B"][12:14, 5:8, 2] = 1
    s["qsm"][10:14, 5:8, 2] = 0.03
    return s


def test_it_makes_an_adjudicated_candidate_a_lesion_of_its_raters_marks() -> None:
    s = adjudication_session()
    a = analyse_session(**s)
    (pending,) = [c for c in a.candidates if c["status"] == "adjudication"]
    assert pending["raters"] == ["A", "B"] and pending["lesion"] is None

    included = remeasure(a, s["tissue"], qsm=s["qsm"], included=[pending["candidate"]])

    row = by_portion(included)[(3, "wm")]  # the next id after lesions 1 and 2
    assert row["n_voxels"] == 12 and row["adjudicated"] is True and row["raters"] == ["A", "B"]
    assert row["relative_susceptibility_ppm"] == pytest.approx(0.02, abs=1e-6)  # 0.03 vs WM 0.01
    assert (included.lesion_labels == 3).sum() == 12 and (included.reference_labels == 31).any()
    (now,) = [c for c in included.candidates if c["candidate"] == pending["candidate"]]
    assert (now["status"], now["lesion"], now["adjudicated"]) == ("lesion", 3, True)
    assert not (a.lesion_labels == 3).any()  # the original analysis is unchanged
    # Measured again with an edit on top (voxels removed from the new lesion): the id holds.
    drop = np.zeros(SHAPE, bool)
    drop[10, 5:8, 2] = True
    again = remeasure(
        included, s["tissue"], qsm=s["qsm"], included=[pending["candidate"]],
        lesion_labels=remove_voxels(included.lesion_labels, drop), reference_labels=included.reference_labels,
    )
    assert by_portion(again)[(3, "wm")]["n_voxels"] == 9
    with pytest.raises(LesionInputError, match="not left to adjudication"):
        remeasure(a, s["tissue"], included=[1])
    with pytest.raises(LesionInputError, match="no such candidate"):
        remeasure(a, s["tissue"], included=[99])


def test_it_measures_each_raters_own_lesions_by_hand() -> None:
    s = session()
    # C also draws a 2-voxel speck (below the 2 mm sphere of 4.19 mm^3) far from the others.
    s["masks"]["C"][12:14, 12, 4] = 1

    a = analyse_session(**s, subject="MS001", per_rater=True, votes={"C": [((6, 6, 2), "cortical"), ((12, 12, 4), "wm")]})

    assert sorted(a.rater_rows) == ["A", "B", "C"]
    a_rows = {(r["lesion"], r["portion"]): r for r in a.rater_rows["A"]}
    assert list(a_rows) == [(1, "wm"), (2, "cortical"), (2, "wm")]
    # A's lesions are the consensus lesions here: the same numbers as worked by hand above.
    assert a_rows[(1, "wm")]["relative_susceptibility_ppm"] == pytest.approx(0.04, abs=1e-6)
    assert a_rows[(2, "cortical")]["relative_susceptibility_ppm"] == pytest.approx(-0.03, abs=1e-6)
    assert a_rows[(2, "wm")]["relative_susceptibility_ppm"] == pytest.approx(0.02, abs=1e-6)
    assert all(r["raters"] == ["A"] and r["adjudicated"] is False for r in a.rater_rows["A"])
    # C: one lesion (the speck is too small to count); C's own vote, not the majority's.
    (c,) = a.rater_rows["C"]
    assert (c["lesion"], c["lesion_type"], c["n_voxels"], c["vote_majority"]) == (1, "wm", 9, "cortical")
    assert c["relative_susceptibility_ppm"] == pytest.approx(0.04, abs=1e-6)
    # Each rater's lesion names the consensus candidate that holds it.
    candidate_of_lesion = {cand["lesion"]: cand["candidate"] for cand in a.candidates if cand["lesion"]}
    assert c["candidate"] == candidate_of_lesion[1]
    assert {r["candidate"] for r in a.rater_rows["A"] if r["lesion"] == 2} == {candidate_of_lesion[2]}
    assert "raters" in a.timings


def test_a_raters_reference_roi_keeps_out_of_every_raters_marks_as_the_consensus_one_does() -> None:
    s = session()
    # B alone marks a ring of white matter around lesion 1: A's reference may not use it.
    ring = np.zeros(SHAPE, bool)
    ring[3:10, 3:10, 2] = True
    ring[4:9, 4:9, 2] = False
    s["masks"]["B"] = s["masks"]["B"] | ring.astype(np.uint8)

    a = analyse_session(**s, per_rater=True)

    from qsmreview.lesions.reference import roi_id

    wm_roi = (a.reference_labels == roi_id(1, "wm"))
    assert wm_roi.any() and not (wm_roi & ring).any()
    a_wm = next(r for r in a.rater_rows["A"] if r["lesion"] == 1)
    assert a_wm["reference_n_voxels"] == by_portion(a)[(1, "wm")]["reference_n_voxels"] == int(wm_roi.sum())
    assert not analyse_session(**session()).rater_rows  # only when asked
