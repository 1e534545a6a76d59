"""The PI dashboard and the import page, rendered by the server (the figures are drawn in the
browser: tests/e2e/test_reports_dashboard.py)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from qsmreview.access import system
from qsmreview.jobs.models import Job
from qsmreview.reports.models import ImportedLesionTable
from qsmreview.reports.services import statistics_compute
from tests.reports.conftest import IMPORTED_CSV


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _figures(response) -> dict:
    text = response.content.decode()
    start = text.index('<script id="report-figures" type="application/json">') + len(
        '<script id="report-figures" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)])


def test_it_shows_table_3_with_the_bonferroni_threshold(study, run, imported, pi):
    snapshot = statistics_compute(by=system("test"), study=study)

    response = _client(pi).get(f"/studies/{study.pk}/reports/")

    assert response.status_code == 200
    text = response.content.decode()
    m = snapshot.result["correction"]["m"]
    assert f"α/m = 0.05/{m} = <strong data-testid=\"bonferroni-threshold\">{0.05 / m:.4f}</strong>" in text
    assert 'data-group="wm_lesions"' in text and 'data-group="patient_wm_lesions"' in text
    assert 'data-testid="up-to-date"' in text
    assert "vendor/vega/vega-embed.min.js" in text
    assert not Job.objects.filter(kind="statistics").exists()  # a fresh snapshot: nothing queued


def test_it_queues_a_job_for_filters_without_a_snapshot_and_shows_its_progress(study, run, pi):
    response = _client(pi).get(f"/studies/{study.pk}/reports/?source=consensus&excluded=include")

    job = Job.objects.get(kind="statistics")
    assert job.parameters["filters"] == {"source": "consensus", "excluded": "include"}
    assert f'data-testid="job-progress" data-job="{job.pk}"' in response.content.decode()
    _client(pi).get(f"/studies/{study.pk}/reports/?source=consensus&excluded=include")
    assert Job.objects.filter(kind="statistics").count() == 1  # the queued one is shown again


def test_it_gives_the_figures_their_points_and_links(study, run, imported, pi):
    response = _client(pi).get(f"/studies/{study.pk}/reports/")

    figures = _figures(response)
    lesion_1 = next(p for p in figures["lesions"] if p["subject"] == "P01" and p["lesion"] == "1")
    assert lesion_1["value_ppm"] == 0.07 and lesion_1["kind"] == "WM lesions"
    assert lesion_1["url"] == f"/sessions/{run.session_id}/consensus/qc/viewer/#lesion-1"
    mixed = [p for p in figures["lesions"] if p["pair"] == "P01/2"]
    assert sorted(p["kind"] for p in mixed) == ["Mixed: WM portion", "Mixed: cortical portion"]
    assert mixed[0]["x"] - round(mixed[0]["x"]) == pytest.approx(mixed[1]["x"] - round(mixed[1]["x"]))
    assert all(p["url"] is None for p in figures["lesions"] if p["source"].startswith("imported"))
    ext1 = next(p for p in figures["patients"] if p["subject"] == "EXT1")
    assert ext1["value_ppm"] == pytest.approx(0.02)


def test_it_shows_the_progress_of_the_study(study, run, pi, admin, rater):
    from qsmreview.annotations.models import Assignment

    Assignment.objects.create(session=run.session, rater=rater, assigned_by=admin)

    text = _client(pi).get(f"/studies/{study.pk}/reports/").content.decode()

    assert "<td>Consensus</td><td>1 / 1</td>" in text
    assert "<td>Ratings: rater1</td><td>0 / 1 submitted</td>" in text


def test_it_offers_the_import_to_admins_only(study, pi, admin):
    assert 'data-testid="import-link"' in _client(admin).get(f"/studies/{study.pk}/reports/").content.decode()
    assert 'data-testid="import-link"' not in _client(pi).get(f"/studies/{study.pk}/reports/").content.decode()


def test_it_imports_a_table_from_the_page(study, admin):
    upload = SimpleUploadedFile("external.csv", IMPORTED_CSV.encode(), content_type="text/csv")

    response = _client(admin).post(f"/studies/{study.pk}/reports/import/", {"file": upload})

    assert response.status_code == 302 and response["Location"] == f"/studies/{study.pk}/reports/"
    assert ImportedLesionTable.objects.get().n_rows == 7


def test_it_lists_the_wrong_rows_on_the_page_and_stores_nothing(study, admin):
    text = "subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nA,1,wm,wm,x\nA,2,grey,wm,0\n"
    upload = SimpleUploadedFile("bad.csv", text.encode(), content_type="text/csv")

    response = _client(admin).post(f"/studies/{study.pk}/reports/import/", {"file": upload})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="import-errors"' in page
    assert "<td>2</td><td>relative_susceptibility_ppm</td>" in page and "<td>3</td><td>lesion_type</td>" in page
    assert not ImportedLesionTable.objects.exists()


def test_a_pi_cannot_upload_to_the_import_page(study, pi):
    upload = SimpleUploadedFile("x.csv", IMPORTED_CSV.encode(), content_type="text/csv")

    response = _client(pi).post(f"/studies/{study.pk}/reports/import/", {"file": upload})

    assert response.status_code == 404
    assert not ImportedLesionTable.objects.exists()


def test_it_shows_no_progress_when_the_snapshot_is_up_to_date(study, run, pi):
    from qsmreview.reports.services import statistics_request

    statistics_compute(by=system("test"), study=study)
    statistics_request(by=pi, study=study)  # queued, would find nothing new

    text = _client(pi).get(f"/studies/{study.pk}/reports/").content.decode()

    assert 'data-testid="job-progress"' not in text and 'data-testid="up-to-date"' in text


def test_it_shows_a_failed_computation_instead_of_queuing_again(study, run, pi):
    from qsmreview.reports.services import statistics_request

    job = statistics_request(by=pi, study=study)
    Job.objects.filter(pk=job.pk).update(status="failed", error="the study's lesion table: line 3: repeated")

    text = _client(pi).get(f"/studies/{study.pk}/reports/").content.decode()

    assert "failed: the study&#x27;s lesion table: line 3: repeated" in text
    assert Job.objects.filter(kind="statistics").count() == 1
    assert 'data-testid="recompute"' in text


def test_it_offers_each_raters_own_lesions_and_links_them_to_their_candidate(study, run, pi):
    from qsmreview.consensus.models import RaterLesionRow

    RaterLesionRow.objects.create(run=run, rater="rater2", subject="P01", lesion=1, lesion_type="wm", portion="wm",
                                  n_voxels=5, volume_mm3=5.0, relative_susceptibility_ppm=0.03, extras={"candidate": 3})
    client = _client(pi)

    page = client.get(f"/studies/{study.pk}/reports/").content.decode()
    chosen = client.get(f"/studies/{study.pk}/reports/?source=rater:rater2")
    unknown = client.get(f"/studies/{study.pk}/reports/?source=rater:nobody", follow=True).content.decode()

    for name in ("rater1", "rater2", "rater3"):
        assert f'<option value="rater:{name}">{name}\'s own lesions</option>' in page
    text = chosen.content.decode()
    assert '<option value="rater:rater2" selected>' in text and 'data-testid="rater-source"' in text
    assert 'data-testid="rater-unmeasured"' in text  # the factory run's summary names no rater
    (point,) = _figures(chosen)["lesions"]
    assert point["url"] == f"/sessions/{run.session_id}/consensus/#candidate-3" and point["source"] == "rater:rater2"
    assert Job.objects.filter(kind="statistics", parameters__filters__source="rater:rater2").count() == 1
    assert "no rater &#x27;nobody&#x27;" in unknown and "showing the default filters" in unknown


def test_it_queues_a_job_when_the_snapshot_is_older_than_the_measurements(study, run, pi, admin):
    from qsmreview.reports.services import lesion_table_import

    statistics_compute(by=system("test"), study=study)
    lesion_table_import(by=admin, study=study, name="later.csv", content=IMPORTED_CSV.encode())
    Job.objects.filter(kind="statistics").delete()  # as if the automatic trigger was missed

    text = _client(pi).get(f"/studies/{study.pk}/reports/").content.decode()

    job = Job.objects.get(kind="statistics")
    assert job.parameters["trigger"] == "opened on the dashboard: the measurements changed"
    assert 'data-testid="stale"' in text and f'data-job="{job.pk}"' in text
