"""The series viewer in Chromium: an admin goes from the study page to a QSM in NiiVue (diverging
map, window in ppm), lays the FLAIR of the same session over it, and downloads the NIfTI bytes."""

from __future__ import annotations

import hashlib

import pytest

from tests.fixtures.nifti import AFFINE, ECHO_TIMES_S, magnitude_data
from tests.fixtures.phantom import Misalignment, misaligned_world_affine, store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: A narrow window keeps the canvas near 340 px: every frame is rendered in software.
VIEWPORT = {"width": 640, "height": 760}


@pytest.fixture
def scans(media_root, phantom_session, phantom):
    qsm = store(phantom_session, "qsm", phantom.chi_ppm * phantom.brain_mask, phantom.affine, label="medi")
    moved = misaligned_world_affine(phantom.affine, Misalignment((0.0, 0.0, 6.0), (2.0, -1.0, 0.0)))
    flair = store(phantom_session, "flair", phantom.flair, moved, space="native")
    return {"qsm": qsm, "flair": flair}


def test_an_admin_views_a_qsm_in_ppm_with_an_overlay(
    logged_in_page, live_server, admin, study, scans, phantom, screens_dir
) -> None:
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    qsm = scans["qsm"]
    row = page.locator(f'tr[data-series="{qsm.pk}"]')
    assert row.locator('[data-testid="version"]').inner_text() == "v1"
    flair_row = page.locator(f'tr[data-series="{scans["flair"].pk}"]')
    assert flair_row.locator('[data-testid="version"]').inner_text() == "v1 · own grid (native)"

    row.locator(f'[data-testid="view-{qsm.pk}"]').click()
    page.wait_for_url(f"{live_server.url}/series/{qsm.pk}/view/")
    viewer = page.locator('[data-testid="viewer"]')
    page.wait_for_selector('[data-testid="viewer"][data-ready="true"]', timeout=60_000)

    assert viewer.get_attribute("data-colormap") == "qsm_rdbu"
    assert float(viewer.get_attribute("data-cal-min")) == pytest.approx(-0.15)
    assert float(viewer.get_attribute("data-cal-max")) == pytest.approx(0.15)
    assert page.locator('[data-testid="units"]').inner_text() == "(ppm)"
    assert page.locator('[data-testid="colourbar"] .hi').inner_text() == "0.1500 ppm"

    # A preset and a typed value keep the window centred on 0.
    page.get_by_role("button", name="±0.05 ppm").click()
    assert float(viewer.get_attribute("data-cal-max")) == pytest.approx(0.05)
    page.fill('[data-testid="win-max"]', "0.2")
    page.press('[data-testid="win-max"]', "Enter")
    page.locator('[data-testid="win-min"]').focus()
    page.wait_for_function("document.querySelector('[data-testid=viewer]').dataset.calMin === '-0.2'")

    # The value under the crosshair, in ppm, matches the phantom's chi at that voxel.
    canvas = page.locator("#viewer-canvas")
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    page.wait_for_function("document.querySelector('[data-testid=value]').textContent.endsWith('ppm')")
    i, j, k = (int(v) for v in page.locator('[data-testid="where"]').inner_text().split(" · ")[0].removeprefix("voxel ").split(", "))
    shown = float(page.locator('[data-testid="value"]').inner_text().removesuffix(" ppm"))
    chi = phantom.chi_ppm * phantom.brain_mask
    assert shown == pytest.approx(float(chi[i, j, k]), abs=1e-4)

    page.screenshot(path=str(screens_dir / "viewer_qsm.png"), full_page=True)

    # Overlay: the session's native FLAIR (visible to an admin), listed with its grid.
    options = page.locator('[data-testid="overlay"] option').all_inner_texts()
    assert any("own grid (native)" in text for text in options)
    page.select_option('[data-testid="overlay"]', str(scans["flair"].pk))
    page.wait_for_selector(f'[data-testid="viewer"][data-overlay="{scans["flair"].pk}"]', timeout=60_000)
    assert page.evaluate("window.qsmViewer.nv.volumes.length") == 2
    page.fill('[data-testid="opacity"]', "0.3")
    page.dispatch_event('[data-testid="opacity"]', "input")
    assert page.evaluate("window.qsmViewer.nv.volumes[1].opacity") == pytest.approx(0.3)
    page.screenshot(path=str(screens_dir / "viewer_qsm_overlay.png"), full_page=True)

    # The download link returns the stored NIfTI bytes, named for BIDS.
    href = page.locator('[data-testid="download"]').get_attribute("href")
    response = page.request.get(f"{live_server.url}{href}")
    assert response.status == 200
    assert "attachment" in response.headers["content-disposition"]
    assert "sub-P01_ses-01_qsm_medi_v1.nii.gz" in response.headers["content-disposition"]
    assert hashlib.sha256(response.body()).hexdigest() == qsm.sha256


def test_a_multi_echo_magnitude_shows_one_echo_with_a_selector(
    media_root, logged_in_page, live_server, admin, session
) -> None:
    mag = store(session, "t2star_mag", magnitude_data(echoes=3), AFFINE, echo_times_s=list(ECHO_TIMES_S[:3]))
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/series/{mag.pk}/view/")
    page.wait_for_selector('[data-testid="viewer"][data-ready="true"]', timeout=60_000)
    viewer = page.locator('[data-testid="viewer"]')
    assert viewer.get_attribute("data-colormap") == "gray"
    assert viewer.get_attribute("data-frames") == "3"
    assert page.evaluate("window.qsmViewer.volume.frame4D") == 0
    assert "echo 2 (TE 8.0 ms)" in page.locator('[data-testid="echo"]').inner_text()
    page.select_option('[data-testid="echo"]', "1")
    assert page.evaluate("window.qsmViewer.volume.frame4D") == 1
    assert page.locator('[data-testid="units"]').inner_text() == ""


def test_a_native_flair_over_the_magnitude_shows_the_registration(
    logged_in_page, live_server, admin, scans, phantom_session, screens_dir
) -> None:
    from qsmreview.studies.models import Series

    mag = Series.objects.get(session=phantom_session, kind="t2star_mag")
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/series/{mag.pk}/view/")
    page.wait_for_selector('[data-testid="viewer"][data-ready="true"]', timeout=60_000)
    page.select_option('[data-testid="overlay-colormap"]', "hot")
    page.select_option('[data-testid="overlay"]', str(scans["flair"].pk))
    page.wait_for_selector(f'[data-testid="viewer"][data-overlay="{scans["flair"].pk}"]', timeout=60_000)
    assert page.evaluate("window.qsmViewer.nv.volumes[1].colormap") == "hot"
    # Removing the overlay leaves the magnitude alone.
    page.screenshot(path=str(screens_dir / "viewer_flair_over_magnitude.png"), full_page=True)
    page.select_option('[data-testid="overlay"]', "")
    assert page.evaluate("window.qsmViewer.nv.volumes.length") == 1


def test_a_volume_that_cannot_be_read_shows_an_error(media_root, logged_in_page, live_server, admin, session) -> None:
    from qsmreview.studies.models import Series

    broken = store(session, "t2star_mag", magnitude_data(), AFFINE)
    Series.objects.filter(pk=broken.pk).update(file="studies/missing.nii.gz")  # the file is gone
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/series/{broken.pk}/view/")
    page.wait_for_selector('[data-testid="viewer"][data-ready="error"]', timeout=60_000)
    assert "could not load this series" in page.locator('[data-testid="viewer-error"]').inner_text()
