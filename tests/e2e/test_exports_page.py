"""The BIDS export page in Chromium with a real worker: a PI prepares an export, watches the job's
progress, the page reloads when it is done and the download is the stored zip."""

from __future__ import annotations

import hashlib

import pytest

from qsmreview.exports.models import StudyExport
from tests.exports.conftest import Exportable, make_exportable

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def exportable(study, session, admin) -> Exportable:
    return make_exportable(study, session, admin)  # the shared MEDIA_ROOT: the worker reads it


def test_a_pi_prepares_and_downloads_an_export(logged_in_page, live_server, exportable: Exportable, pi, celery_worker,
                                              tmp_path, screens_dir) -> None:
    page = logged_in_page(pi)
    page.goto(f"{live_server.url}/studies/{exportable.study.pk}/")
    page.click('[data-testid="export-link"]')
    page.wait_for_url(f"{live_server.url}/studies/{exportable.study.pk}/exports/")
    assert page.locator('[data-testid="no-exports"]').is_visible()

    page.click('[data-testid="prepare-export"]')
    page.wait_for_selector('[data-testid="exports"] tr[data-export]', timeout=60_000)  # reloaded when done

    export = StudyExport.objects.get()
    page.screenshot(path=str(screens_dir / "exports.png"), full_page=True)
    with page.expect_download() as info:
        page.click(f'[data-testid="download-{export.pk}"]')
    path = tmp_path / "export.zip"
    info.value.save_as(path)
    assert info.value.suggested_filename == "ms-7t-qsm-bids.zip"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export.sha256
    assert page.locator('[data-testid="prepare-export"]').is_visible()
