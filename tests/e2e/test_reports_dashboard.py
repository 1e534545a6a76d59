"""The PI dashboard in Chromium: the figures are drawn by the pinned Vega-Lite/vega-embed, hover
shows subject, lesion and value, a click on a consensus lesion opens it in the QC viewer, each figure
downloads as PNG and SVG and its data as CSV; a screenshot for the README."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from qsmreview.access import system
from qsmreview.reports.services import lesion_table_import, statistics_compute
from tests.reports.conftest import IMPORTED_CSV

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dashboard(media_root, study, session, admin, pi):
    from tests.consensus.factories import make_consensus_run

    run = make_consensus_run(session)
    lesion_table_import(by=admin, study=study, name="external.csv", content=IMPORTED_CSV.encode())
    statistics_compute(by=system("test"), study=study)
    return run


def _open(page, live_server, study):
    page.goto(f"{live_server.url}/studies/{study.pk}/reports/")
    expect(page.locator("body[data-figures=ready]")).to_have_count(1, timeout=20_000)


def test_a_pi_reads_hovers_clicks_and_downloads(logged_in_page, live_server, study, pi, dashboard, screens_dir, tmp_path) -> None:
    page = logged_in_page(pi)
    _open(page, live_server, study)

    points = page.locator("#fig-lesions svg .mark-symbol path")
    expect(points).to_have_count(10)  # 3 consensus rows + 7 imported
    expect(page.locator("#fig-lesions svg .mark-line path")).to_have_count(2)  # two mixed lesions joined
    # patients x kinds with a value: P01 3 (WM, both mixed portions), EXT1 1, EXT2 2, EXT3 3
    expect(page.locator("#fig-patients svg .mark-symbol path")).to_have_count(9)
    expect(page.locator('[data-testid="bonferroni-threshold"]')).to_be_visible()
    page.screenshot(path=str(screens_dir / "reports-dashboard.png"), full_page=True)

    # Hover: find the consensus lesion P01/1 by its tooltip.
    tooltip = page.locator("#vg-tooltip-element")
    target = None
    for i in range(points.count()):
        points.nth(i).hover()
        expect(tooltip).to_be_visible()
        text = tooltip.inner_text()
        if "P01" in text and "0.0700" in text:
            target = points.nth(i)
            break
    assert target is not None, "no tooltip showed subject P01 with 0.0700 ppm"
    assert "Lesion" in text and "1" in text and "WM lesions" in text

    # Downloads: PNG and SVG from vega-embed's menu, the data as CSV.
    menu = page.locator('[data-testid="figure-lesions"] .vega-embed details')
    for ext, magic in (("svg", b"<svg"), ("png", b"\x89PNG")):
        if menu.get_attribute("open") is None:
            menu.locator("summary").click()
        with page.expect_download() as info:
            menu.locator(f'a[download="fig2a-lesions.{ext}"]').click()
        path = tmp_path / f"fig.{ext}"
        info.value.save_as(path)
        assert path.read_bytes().startswith(magic), ext
    with page.expect_download() as info:
        page.click('[data-testid="csv-lesions"]')
    csv_path = tmp_path / "lesions.csv"
    info.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("subject,lesion,lesion_type,portion,relative_susceptibility_ppm") and len(lines) == 11
    with page.expect_download() as info:
        page.click('[data-testid="csv-agreement"]')
    assert info.value.suggested_filename == "agreement.csv"

    # Click-through: the lesion in its session's QC viewer (which selects it: test_qc_viewer.py).
    target.click()
    page.wait_for_url(f"{live_server.url}/sessions/{dashboard.session_id}/consensus/qc/viewer/#lesion-1")
    # (the factory run has no QSM to draw; the viewer itself: tests/e2e/test_qc_viewer.py)
    expect(page.locator('[data-testid="no-qsm"]')).to_have_count(1)


def test_the_reference_cohort_dashboard(logged_in_page, live_server, study, admin, pi, screens_dir) -> None:
    """The synthetic reference cohort (the demo's second study) drawn: 192 rows as points, 9 mixed
    lesions joined. Its screenshot is the README's (copied to docs/img when
    QSMREVIEW_UPDATE_SCREENSHOTS=1)."""
    import os
    from pathlib import Path

    from qsmreview.stats.synthetic import reference_cohort
    from qsmreview.stats.table import format_table

    lesion_table_import(by=admin, study=study, name="reference_cohort_seed0.csv",
                        content=format_table(reference_cohort(seed=0)).encode())
    statistics_compute(by=system("test"), study=study)
    page = logged_in_page(pi)
    _open(page, live_server, study)

    expect(page.locator("#fig-lesions svg .mark-symbol path")).to_have_count(192)
    expect(page.locator("#fig-lesions svg .mark-line path")).to_have_count(9)
    expect(page.locator('[data-testid="bonferroni-threshold"]')).to_have_text("0.0083")
    shot = screens_dir / "reports-dashboard-cohort.png"
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.locator('[data-testid="results-table"]').scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("QSMREVIEW_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, Path(__file__).resolve().parents[2] / "docs" / "img" / "reports-dashboard.png")
