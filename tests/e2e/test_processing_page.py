"""The processing page in Chromium: an admin runs a brain-mask job and watches the session's row
update live, from the job's progress to the new series' version, without reloading."""

from __future__ import annotations

import pytest

from qsmreview.jobs.models import Job
from qsmreview.studies.models import Series

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_admin_runs_a_brain_mask_and_sees_it_arrive(
    logged_in_page, live_server, admin, study, phantom_session, celery_worker, screens_dir
) -> None:
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/processing/")
    row = page.locator(f'tr[data-session="{phantom_session.pk}"]')
    assert row.locator('td.series[data-kind="brain_mask"]').inner_text().strip() == "–"
    assert row.locator('td.series[data-kind="t2star_mag"]').inner_text().strip() == "v1"

    page.click(f'[data-testid="run-brain_mask-{phantom_session.pk}"]')
    page.wait_for_url(f"{live_server.url}/studies/{study.pk}/processing/")
    job = Job.objects.get(kind="brain_mask")
    assert f"Queued job #{job.pk} (brain_mask)" in page.locator(".message.success").inner_text()

    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector(
        f'tr[data-session="{phantom_session.pk}"] td.job[data-kind="brain_mask"] .status-succeeded',
        timeout=60_000,
    )
    page.wait_for_function(
        """id => document.querySelector(`tr[data-session="${id}"] td.series[data-kind="brain_mask"]`)
                 .innerText.trim() === "v1" """,
        arg=phantom_session.pk,
        timeout=15_000,
    )
    cell = row.locator('td.job[data-kind="brain_mask"]')
    assert cell.locator("progress").get_attribute("value") == "100"
    assert page.evaluate("window.__sameDocument") is True
    assert Series.objects.filter(session=phantom_session, kind="brain_mask", derived_by=job).count() == 1
    page.screenshot(path=str(screens_dir / "processing.png"), full_page=True)


def test_a_missing_input_is_shown_as_an_error_message(
    logged_in_page, live_server, admin, study, session, celery_worker
) -> None:
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/processing/")
    page.click(f'[data-testid="run-qsm-{session.pk}"]')
    assert "no T2* magnitude series uploaded" in page.locator(".message.error").inner_text()
    assert not Job.objects.exists()


def test_a_rater_cannot_open_the_processing_page(logged_in_page, live_server, rater, study) -> None:
    page = logged_in_page(rater)
    response = page.goto(f"{live_server.url}/studies/{study.pk}/processing/")
    assert response.status == 404
