"""The processing page in Chromium after its live refresh: two current FLAIRs told apart by grid,
and a failed job's error shown in full, not folded away."""

from __future__ import annotations

import pytest

from qsmreview.jobs.models import Job, JobStatus
from qsmreview.studies.models import Series
from tests.web.test_pages import make_series

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_live_page_labels_grids_and_shows_errors(logged_in_page, live_server, admin, study, session) -> None:
    job = Job.objects.create(kind="coregister", status=JobStatus.SUCCEEDED, study=study, session=session, progress=100)
    native = make_series(session, "flair", blinded=False)
    Series.objects.filter(pk=native.pk).update(space="native")
    coreg = make_series(session, "flair", blinded=False)
    Series.objects.filter(pk=coreg.pk).update(derived_by=job)
    Job.objects.create(
        kind="qsm", status=JobStatus.FAILED, study=study, session=session, progress=20,
        error="ValidationFailed: the phase has 3 echoes but 2 echo times",
    )
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/processing/")
    page.wait_for_selector("table.processing[data-polled]")  # processing.js has redrawn the rows
    row = page.locator(f'tr[data-session="{session.pk}"]')
    flair = row.locator('td.series[data-kind="flair"] span.version').all_inner_texts()
    assert sorted(flair) == ["v1 · on T2* grid (coregistered)", "v1 · own grid (native)"]
    error = row.locator('td.job[data-kind="qsm"] [data-testid="job-error"]')
    assert error.is_visible()
    assert "the phase has 3 echoes but 2 echo times" in error.inner_text()
