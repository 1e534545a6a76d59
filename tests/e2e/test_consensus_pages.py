"""The consensus pages in Chromium: an admin goes from the study page to a session's consensus,
reads the lesion table, excludes a lesion on the QC page with a reason and restores it; a PI reads
the same pages without a form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from qsmreview.consensus.services import consensus_run
from tests.consensus.conftest import assigned, inputs_session, rated  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def run(media_root, rated):  # noqa: F811
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


def test_an_admin_excludes_and_restores_a_lesion(logged_in_page, live_server, run, rated, screens_dir) -> None:  # noqa: F811
    page = logged_in_page(rated.admin)
    page.goto(f"{live_server.url}/studies/{rated.session.subject.study_id}/")

    page.click('[data-testid="consensus-link"]')
    page.click(f'[data-testid="session-consensus-{rated.session.pk}"]')
    table = page.locator('[data-testid="lesion-table"]')
    expect(table.locator("tr[data-lesion]")).to_have_count(2)
    expect(table.locator('tr[data-lesion="1"]')).to_contain_text("0.0800")
    page.screenshot(path=str(screens_dir / "consensus-session.png"), full_page=True)

    page.click('[data-testid="qc-link"]')
    row = page.locator('[data-testid="qc-table"] tr[data-lesion="2"]')
    row.locator("select[name=reason_code]").select_option("vessel")
    row.locator("input[name=reason]").fill("a vein on QSM")
    row.locator('[data-testid="exclude-2"]').click()

    expect(page.locator('[data-testid="qc-state-2"]')).to_have_text("excluded: vessel")
    expect(page.locator('[data-testid="decisions"]')).to_contain_text("a vein on QSM")
    page.screenshot(path=str(screens_dir / "consensus-qc.png"))

    row = page.locator('[data-testid="qc-table"] tr[data-lesion="2"]')
    row.locator("input[name=reason]").fill("not a vein after all")
    row.locator('[data-testid="restore-2"]').click()
    expect(page.locator('[data-testid="qc-state-2"]')).to_have_text("included")


def test_a_pi_reads_the_consensus_without_forms(logged_in_page, live_server, run, rated, pi) -> None:  # noqa: F811
    page = logged_in_page(pi)
    page.goto(f"{live_server.url}/sessions/{rated.session.pk}/consensus/qc/")

    expect(page.locator('[data-testid="qc-table"] tr[data-lesion]')).to_have_count(2)
    expect(page.locator("form input[name=action]")).to_have_count(0)
