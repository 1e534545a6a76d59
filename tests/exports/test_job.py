"""The export job on a real Celery worker process (the test database, a real broker): a PI asks,
the worker writes the zip into storage with progress, and the export is listed for download."""

from __future__ import annotations

import hashlib

import pytest

from qsmreview.exports.models import StudyExport
from tests.exports.conftest import Exportable
from tests.fixtures.worker import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_pi_s_export_is_prepared_on_the_worker(celery_worker, exportable: Exportable, pi):
    from qsmreview.exports.prepared import export_request

    job = wait_for_job(export_request(by=pi, study=exportable.study), timeout=120.0)

    assert job.status == "succeeded", job.error
    assert (job.progress, job.stage) == (100, "done")
    export = StudyExport.objects.get(job=job)
    assert job.result == {"export": export.pk, "size": export.size, "sessions": 2}
    assert hashlib.sha256(export.file.open("rb").read()).hexdigest() == export.sha256
    assert export.requested_by == pi
