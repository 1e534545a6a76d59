"""The jobs page in Chromium: an admin runs a self-test and watches it finish without reloading."""

from __future__ import annotations

import re

import pytest

from qsmreview.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_admin_watches_a_selftest_job_progress_live(
    logged_in_page, live_server, admin, study, celery_worker, screens_dir
) -> None:
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/jobs/")
    page.wait_for_selector("table#jobs[data-polled]")  # jobs.js loaded and polled once

    page.fill("form.selftest input[name=steps]", "8")
    page.click("form.selftest button[type=submit]")
    page.wait_for_url(f"{live_server.url}/jobs/")
    job = Job.objects.get()
    assert page.locator(".message.success").inner_text() == f"Queued self-test job #{job.pk}."

    # From here on the page is never reloaded: a marker set now must survive to the end.
    page.evaluate("window.__sameDocument = true")
    row = page.locator(f'tr[data-job="{job.pk}"]')
    page.wait_for_function(
        """id => { const p = document.querySelector(`tr[data-job="${id}"] progress`);
                   return p && p.value > 0 && p.value < 100; }""",
        arg=job.pk,
        timeout=20_000,
    )
    assert row.locator(".status").inner_text() == "running"
    assert re.fullmatch(r"step \d of 8", row.locator(".stage").inner_text())
    midway = int(row.locator("progress").get_attribute("value"))
    assert row.locator('button[data-action="cancel"]').is_visible()
    page.screenshot(path=str(screens_dir / "jobs-running.png"))

    page.wait_for_selector(f'tr[data-job="{job.pk}"] .status-succeeded', timeout=20_000)
    assert row.locator(".status").inner_text() == "succeeded"
    assert row.locator("progress").get_attribute("value") == "100"
    assert int(row.locator("progress").get_attribute("value")) > midway
    assert row.locator(".worker").inner_text().startswith(celery_worker.hostname)
    assert row.locator("button[data-action]").count() == 0
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(screens_dir / "jobs.png"), full_page=True)
