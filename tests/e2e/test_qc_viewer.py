"""The QC viewer in Chromium, on the session worked by hand (tests/consensus/conftest.py) stored on
an identity grid and on a flipped, oblique one: an admin sees the QSM with the three overlays,
picks lesion 1 (the crosshair moves to its centre voxel), draws one voxel there with the pen and
removes it from the lesion; the server records exactly that voxel (in the file's voxel order, so
NiiVue's RAS-permuted drawing was mapped back) and a new measurement set has 26 voxels in lesion
1. A PI sees the viewer without tools; a rater gets 404."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from playwright.sync_api import expect

from qsmreview.consensus.models import ConsensusDecision, DecisionKind
from qsmreview.consensus.services import consensus_run
from tests.consensus import conftest as world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1000, "height": 900}


def _oblique_flipped() -> np.ndarray:
    """x flipped, rotated 20 degrees about z, 1 mm voxels, off-centre: a non-RAS grid."""
    a = np.deg2rad(20.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-1.0, 1.0, 1.0])
    affine[:3, 3] = [20.0, -12.0, -6.0]
    return affine


GRIDS = {"identity": np.eye(4), "flipped_oblique": _oblique_flipped()}


def _store(session, admin, kind, data, affine):
    from qsmreview.studies.services.series import series_create_derived

    return series_create_derived(by=admin, session=session, kind=kind, data=data, affine=affine, provenance={"source": "test"})


def _submit(rater, assignment, mask, affine):
    from qsmreview.annotations.services import assignment_submit, revision_create
    from qsmreview.lesions.components import lesion_table

    anchors = [
        {"number": row["number"], "anchor_mm": row["anchor_mm"], "vote": "wm", "confidence": 3, "note": ""}
        for row in lesion_table(mask.astype(bool), affine, anchors=[], min_diameter_mm=0.0, next_number=1)
    ]
    raw = gzip.compress(nib.Nifti1Image(mask.astype(np.uint8), affine).to_bytes(), mtime=0)
    revision = revision_create(by=rater, assignment=assignment, mask_bytes=raw, parent=None, lesions=anchors)
    assignment_submit(by=rater, assignment=assignment, revision=revision)


@pytest.fixture(params=sorted(GRIDS))
def qc_run(request, media_root, session, admin, rater, rater2, rater3):
    from qsmreview.annotations.services import assignment_create

    affine = GRIDS[request.param]
    _store(session, admin, "t2star_mag", world.volume(100.0), affine)
    _store(session, admin, "brain_mask", world.brain(), affine)
    _store(session, admin, "tissue", world.tissue(), affine)
    _store(session, admin, "qsm", world.qsm_data(), affine)
    for name, user in {"rater1": rater, "rater2": rater2, "rater3": rater3}.items():
        _submit(user, assignment_create(by=admin, session=session, rater=user), world.rater_mask(name), affine)
    return consensus_run(by=admin, session=session, trigger="test")


def test_an_admin_draws_over_a_lesion_voxel_and_removes_it(logged_in_page, live_server, qc_run, admin, screens_dir):
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/sessions/{qc_run.session_id}/consensus/qc/")
    page.click('[data-testid="qc-viewer-link"]')
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    viewer = page.locator('[data-testid="qc-viewer"]')

    # QSM + lesions + reference ROIs + vessel proposals, in one NiiVue instance.
    assert viewer.get_attribute("data-volumes") == "4"
    counts = page.evaluate("window.qcViewer.nv.volumes.map((v) => v.img.reduce((n, x) => n + (x > 0 ? 1 : 0), 0))")
    assert counts[1] == 54  # lesions A and B, 27 voxels each
    assert counts[2] > 0  # their reference ROIs
    assert page.evaluate("window.qcViewer.nv.volumes[0].colormap") == "qsm_rdbu"
    load_ms = int(viewer.get_attribute("data-load-ms"))
    print(f"QC viewer load (32x32x16, 4 volumes): {load_ms} ms")

    expect(page.locator('[data-testid="voxels-1"]')).to_have_text("27")
    page.click('[data-testid="qc-lesions"] tr[data-lesion="1"]')
    expect(viewer).to_have_attribute("data-crosshair-lesion", "1")
    # NiiVue reports voxels in its RAS-permuted order: the file's (11, 11, 7) on the identity grid.
    if qc_run.qsm_series.affine == np.eye(4).tolist():
        expect(page.locator('[data-testid="where"]')).to_contain_text("voxel 11, 11, 7")
    # The display copy clips at its 99.5th percentile of non-zero voxels: here lesion B's 0.05 ppm
    # (A and B are 0.6 % of the brain), so A's 0.10 ppm reads 0.05, still above WM's 0.02.
    expect(page.locator('[data-testid="value"]')).to_have_text("0.0500 ppm", timeout=5_000)

    page.select_option('[data-testid="tool"]', "pen")
    x, y = page.evaluate(
        "(() => { const nv = window.qcViewer.nv; return Array.from(nv.frac2canvasPos(nv.scene.crosshairPos)).slice(0, 2); })()"
    )
    box = page.locator("#qc-canvas").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(viewer).to_have_attribute("data-drawn", "1")
    page.screenshot(path=str(screens_dir / "qc-viewer-drawn.png"), full_page=True)

    page.select_option('[data-testid="operation"]', "remove-lesion")
    page.fill('[data-testid="edit-reason"]', "a vein on QSM")
    page.click('[data-testid="apply-edit"]')
    expect(viewer).to_have_attribute("data-set", "2", timeout=30_000)
    expect(page.locator('[data-testid="voxels-1"]')).to_have_text("26")
    expect(page.locator('[data-testid="status"]')).to_contain_text("measurement set 2")

    decision = ConsensusDecision.objects.get(run=qc_run)
    assert (decision.kind, decision.lesion, decision.reason) == (DecisionKind.REMOVE_VOXELS, 1, "a vein on QSM")
    assert decision.value == {"target": "lesion", "voxels": [[11, 11, 7]]}
    current = qc_run.measurement_sets.get(current=True)
    assert current.number == 2 and current.rows.get(lesion=1).n_voxels == 26
    assert viewer.get_attribute("data-volumes") == "4"
    page.screenshot(path=str(screens_dir / "qc-viewer-removed.png"), full_page=True)


def test_a_pi_sees_the_viewer_without_tools_and_a_rater_gets_404(logged_in_page, live_server, qc_run, pi, rater):
    page = logged_in_page(pi)
    page.goto(f"{live_server.url}/sessions/{qc_run.session_id}/consensus/qc/viewer/")
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    expect(page.locator('[data-testid="qc-lesions"] tr[data-lesion]')).to_have_count(2)
    expect(page.locator('[data-testid="tools"]')).to_have_count(0)
    assert page.evaluate("window.qcViewer.nv.opts.drawingEnabled") is False

    page.context.clear_cookies()
    page = logged_in_page(rater)
    response = page.goto(f"{live_server.url}/sessions/{qc_run.session_id}/consensus/qc/viewer/")
    assert response.status == 404


def _click_voxel(page, mm) -> None:
    """Move the crosshair to scanner ``mm`` and click the pen there (axial view)."""
    x, y = page.evaluate(
        """(mm) => { const nv = window.qcViewer.nv; nv.scene.crosshairPos = nv.mm2frac(mm, 0, true); nv.drawScene();
                     return Array.from(nv.frac2canvasPos(nv.scene.crosshairPos)).slice(0, 2); }""",
        mm,
    )
    box = page.locator("#qc-canvas").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


@pytest.mark.parametrize("qc_run", ["identity"], indirect=True)
def test_an_admin_adds_a_voxel_to_a_reference_roi_and_excludes_and_restores_a_lesion(
    logged_in_page, live_server, qc_run, admin
):
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/sessions/{qc_run.session_id}/consensus/qc/viewer/")
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    viewer = page.locator('[data-testid="qc-viewer"]')
    before = qc_run.measurement_sets.get(current=True).rows.get(lesion=1).reference_n_voxels

    page.click('[data-testid="qc-lesions"] tr[data-lesion="1"]')
    page.select_option('[data-testid="tool"]', "pen")
    page.select_option('[data-testid="operation"]', "add-reference")
    page.fill('[data-testid="edit-reason"]', "normal-appearing WM")

    # Inside lesion A: refused with the rule, nothing stored.
    _click_voxel(page, [11.0, 11.0, 7.0])
    page.click('[data-testid="apply-edit"]')
    expect(page.locator('[data-testid="viewer-error"]')).to_contain_text("inside a consensus lesion (first [11, 11, 7])")
    assert qc_run.decisions.count() == 0

    # White matter on slice 5, far from every lesion: added to ROI 11.
    page.click('[data-testid="clear-drawing"]')
    _click_voxel(page, [5.0, 5.0, 5.0])
    expect(viewer).to_have_attribute("data-drawn", "1")
    page.click('[data-testid="apply-edit"]')
    expect(viewer).to_have_attribute("data-set", "2", timeout=30_000)
    decision = qc_run.decisions.get()
    assert (decision.kind, decision.value) == (DecisionKind.ADD_VOXELS, {"target": "reference", "roi": 11, "voxels": [[5, 5, 5]]})
    assert qc_run.measurement_sets.get(current=True).rows.get(lesion=1).reference_n_voxels == before + 1

    # Exclude lesion 2 as a vessel, then restore it.
    page.click('[data-testid="qc-lesions"] tr[data-lesion="2"]')
    page.select_option('[data-testid="exclusion-reason"]', "vessel")
    page.fill('[data-testid="edit-reason"]', "a vein")
    page.click('[data-testid="exclude"]')
    expect(page.locator('[data-testid="state-2"]')).to_have_text("excluded: vessel", timeout=30_000)
    page.fill('[data-testid="edit-reason"]', "not a vein")
    page.click('[data-testid="restore"]')
    expect(page.locator('[data-testid="state-2"]')).to_have_text("included", timeout=30_000)
    assert viewer.get_attribute("data-set") == "4"


def test_a_second_panel_shows_the_t2star_magnitude_with_the_lesions_and_follows_the_lesion_list(
    logged_in_page, live_server, qc_run, admin
):
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/sessions/{qc_run.session_id}/consensus/qc/viewer/")
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    magnitude = qc_run.tissue_series.session.series.get(kind="t2star_mag", is_current=True)

    page.select_option('[data-testid="second-series"]', str(magnitude.pk))
    page.wait_for_selector(f'[data-testid="qc-viewer"][data-second="{magnitude.pk}"]', timeout=60_000)
    assert page.evaluate("window.qcViewer.second.nv.volumes.length") == 2
    assert page.evaluate(
        "window.qcViewer.second.nv.volumes[1].img.reduce((n, x) => n + (x > 0 ? 1 : 0), 0)"
    ) == 54

    page.click('[data-testid="qc-lesions"] tr[data-lesion="2"]')
    centre = np.asarray(qc_run.qsm_series.affine) @ np.array([19.0, 19.0, 7.0, 1.0])
    shown = page.evaluate(
        "(() => { const nv = window.qcViewer.second.nv; return Array.from(nv.frac2mm(nv.scene.crosshairPos, 0, true)).slice(0, 3); })()"
    )
    np.testing.assert_allclose(shown, centre[:3], atol=1e-3)


def test_the_dashboards_links_select_a_lesion_or_a_raters_lesion_centre(logged_in_page, live_server, qc_run, pi):
    """The statistics dashboard links a consensus lesion as ``#lesion-N`` and a rater's own lesion
    as ``#mm=x,y,z`` (its centroid through the grid's affine, stored by the run): the viewer
    selects the one and puts the crosshair on the other, on the identity and the oblique grid."""
    from qsmreview.reports.figures import lesion_points
    from qsmreview.reports.filters import Filters
    from qsmreview.reports.selectors import lesion_table

    study = qc_run.session.subject.study
    rows = lesion_table(study, Filters(source="rater:rater3")).rows
    (point,) = lesion_points(rows, link=True)  # rater3: lesion A and its extra voxel, 28 voxels
    viewer = f"/sessions/{qc_run.session_id}/consensus/qc/viewer/"
    assert point["url"].startswith(f"{viewer}#mm=")
    ijk = np.array([(27 * 11 + 13) / 28, (27 * 11 + 10) / 28, (27 * 7 + 6) / 28, 1.0])  # A's cube + (13, 10, 6)
    expected = (np.asarray(qc_run.qsm_series.affine) @ ijk)[:3]

    page = logged_in_page(pi)
    page.goto(f"{live_server.url}{viewer}#lesion-2")
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    expect(page.locator('[data-testid="qc-lesions"] tr[data-lesion="2"].selected')).to_have_count(1)
    assert page.locator('[data-testid="qc-viewer"]').get_attribute("data-crosshair-lesion") == "2"

    page.goto(f"{live_server.url}{point['url']}")
    page.wait_for_selector('[data-testid="qc-viewer"][data-ready="true"]', timeout=60_000)
    shown = page.evaluate(
        "(() => { const nv = window.qcViewer.nv; return Array.from(nv.frac2mm(nv.scene.crosshairPos, 0, true)).slice(0, 3); })()"
    )
    np.testing.assert_allclose(shown, expected, atol=1e-2)
