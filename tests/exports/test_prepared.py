"""Prepared exports: an ``export`` job writes the study's zip into storage (read back with the same
BIDS checks as every export), the newest three are kept, nothing is left on a failure, and only the
study's admins and PI ask, list and download (pages and API); raters get 404."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.test import Client

from qsmreview.errors import Gone, NotFound
from qsmreview.exports.models import KEEP_EXPORTS, StudyExport
from qsmreview.exports.prepared import export_prepare, export_request, exports_of
from qsmreview.jobs.models import Job
from tests.api.world import as_bytes, client_for
from tests.exports.conftest import Exportable
from tests.exports.readback import read_back
from tests.exports.test_api import unzip

pytestmark = pytest.mark.django_db


def _stored_exports(storage) -> list[str]:
    try:
        dirs, files = storage.listdir("exports")
    except FileNotFoundError:
        return []
    return [f"exports/{d}/{f}" for d in dirs for f in storage.listdir(f"exports/{d}")[1]]


def test_a_pi_asks_and_the_job_stores_a_zip_that_reads_back(exportable: Exportable, pi, tmp_path: Path):
    job = export_request(by=pi, study=exportable.study)
    again = export_request(by=pi, study=exportable.study.pk)
    seen = []

    export = export_prepare(job=job, progress=lambda fraction, stage: seen.append((fraction, stage)))

    assert again.pk == job.pk and job.kind == "export" and job.parameters["requested_by"] == pi.pk
    assert (export.study, export.job, export.requested_by, export.name) == (exportable.study, job, pi, "ms-7t-qsm-bids.zip")
    body = export.file.open("rb").read()
    assert (export.size, export.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    root = unzip(body, tmp_path / "unzipped")
    dataset = read_back(root)
    assert export.n_sessions == 2 and export.n_files == sum(1 for f in root.rglob("*") if f.is_file())
    assert set(dataset.participants[0]) >= {"participant_id"}
    assert [f for f, _ in seen][-1] == 0.99 and any("sub-" in stage for _, stage in seen)
    assert all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))  # progress never goes back
    assert exports_of(by=pi, study=exportable.study) == [export]


def test_it_keeps_the_newest_three_and_deletes_the_older_files(exportable: Exportable, admin, django_capture_on_commit_callbacks):
    made = []
    for _ in range(KEEP_EXPORTS + 1):
        job = export_request(by=admin, study=exportable.study)
        with django_capture_on_commit_callbacks(execute=True):
            made.append(export_prepare(job=job))
        Job.objects.filter(pk=job.pk).update(status="succeeded")

    kept = list(StudyExport.objects.order_by("pk"))
    assert [e.pk for e in kept] == [e.pk for e in made[1:]]
    storage = StudyExport._meta.get_field("file").storage
    assert not storage.exists(made[0].file.name)
    assert sorted(_stored_exports(storage)) == sorted(e.file.name for e in kept)


def test_a_failed_export_stores_nothing(exportable: Exportable, admin):
    exportable.qsm.file.storage.delete(exportable.qsm.file.name)
    job = export_request(by=admin, study=exportable.study)

    with pytest.raises(Gone, match="the file of series"):
        export_prepare(job=job)

    assert not StudyExport.objects.exists()
    assert _stored_exports(StudyExport._meta.get_field("file").storage) == []


def test_a_requester_who_lost_the_study_gets_nothing(exportable: Exportable, pi):
    from qsmreview.studies.models import Membership

    job = export_request(by=pi, study=exportable.study)
    Membership.objects.filter(user=pi).delete()

    with pytest.raises(NotFound, match="no such study"):
        export_prepare(job=job)
    assert not StudyExport.objects.exists()


def test_raters_and_outsiders_cannot_ask_list_or_download(exportable: Exportable, admin, rater, outsider, assignment):
    export = export_prepare(job=export_request(by=admin, study=exportable.study))
    for user in (rater, outsider):
        with pytest.raises(NotFound):
            export_request(by=user, study=exportable.study)
        client = client_for(user)
        assert client.get(f"/api/v1/studies/{exportable.study.pk}/exports/").status_code == 404
        assert client.post(f"/api/v1/studies/{exportable.study.pk}/exports/").status_code == 404
        response = client.get(f"/api/v1/exports/{export.pk}/download/")
        assert response.status_code == 404 and response.json() == {"detail": "no such export", "code": "not_found"}
        page = Client()
        page.force_login(user)
        assert page.get(f"/studies/{exportable.study.pk}/exports/").status_code == 404
        assert page.get(f"/exports/{export.pk}/download/").status_code == 404


def test_the_api_queues_lists_and_downloads(exportable: Exportable, pi):
    client = client_for(pi)

    queued = client.post(f"/api/v1/studies/{exportable.study.pk}/exports/")
    export = export_prepare(job=Job.objects.get(pk=queued.json()["id"]))
    listed = client.get(f"/api/v1/studies/{exportable.study.pk}/exports/").json()
    download = client.get(listed[0]["download"])

    assert queued.status_code == 202 and queued.json()["kind"] == "export"
    assert [(e["id"], e["requested_by"], e["size"], e["n_sessions"]) for e in listed] == [(export.pk, "pi", export.size, 2)]
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == 'attachment; filename="ms-7t-qsm-bids.zip"'
    assert hashlib.sha256(as_bytes(download)).hexdigest() == export.sha256


def test_the_page_prepares_shows_progress_and_offers_the_download(exportable: Exportable, pi):
    client = Client()
    client.force_login(pi)
    url = f"/studies/{exportable.study.pk}/exports/"

    empty = client.get(url).content.decode()
    asked = client.post(url, follow=True)
    job = Job.objects.get(kind="export")
    export = export_prepare(job=job)
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    done = client.get(url).content.decode()
    download = client.get(f"/exports/{export.pk}/download/")

    assert 'data-testid="no-exports"' in empty and 'data-testid="prepare-export"' in empty
    assert f'data-testid="job-progress" data-job="{job.pk}"' in asked.content.decode()
    assert f'data-testid="download-{export.pk}"' in done and 'data-testid="prepare-export"' in done
    assert download.status_code == 200 and hashlib.sha256(as_bytes(download)).hexdigest() == export.sha256


def test_the_orphan_sweep_deletes_a_stray_export_and_keeps_the_recorded_ones(exportable: Exportable, admin):
    from datetime import timedelta

    from django.core.files.base import ContentFile

    from qsmreview.studies.services.orphans import storage_sweep_orphans

    export = export_prepare(job=export_request(by=admin, study=exportable.study))
    storage = StudyExport._meta.get_field("file").storage
    stray = storage.save(f"exports/study-{exportable.study.pk}/crashed_ms-7t-qsm-bids.zip", ContentFile(b"PK"))

    result = storage_sweep_orphans(grace=timedelta(0))

    assert stray in result.orphans and not storage.exists(stray)
    assert storage.exists(export.file.name)


def test_a_prepared_zip_that_storage_lost_answers_410_and_the_page_says_so(exportable: Exportable, pi):
    export = export_prepare(job=export_request(by=pi, study=exportable.study))
    export.file.storage.delete(export.file.name)

    api = client_for(pi).get(f"/api/v1/exports/{export.pk}/download/")
    page = Client()
    page.force_login(pi)
    shown = page.get(f"/exports/{export.pk}/download/", follow=True)

    assert api.status_code == 410
    assert api.json() == {"detail": f"the zip of export {export.pk} is missing from storage", "code": "gone"}
    assert shown.redirect_chain == [(f"/studies/{exportable.study.pk}/exports/", 302)]
    assert f"The download failed: the zip of export {export.pk} is missing from storage" in shown.content.decode()
