"""The statistics API: the lesion and patient tables (JSON, CSV), the snapshot with its age and
freshness, asking for a computation, the tests as CSV, importing (row errors in the response)."""

from __future__ import annotations

import csv
import io

import pytest

from qsmreview.access import system
from qsmreview.reports.services import statistics_compute
from tests.api.world import client_for, uploaded_file
from tests.reports.conftest import IMPORTED_CSV


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_it_lists_the_study_s_lesions(study, run, imported, pi):
    response = client_for(pi).get(f"/api/v1/studies/{study.pk}/lesion-table/")

    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 10
    assert rows[0] == {
        "subject": "P01", "lesion": "1", "lesion_type": "wm", "portion": "wm", "relative_susceptibility_ppm": 0.07,
        "excluded": False, "exclusion_reason": "", "source": "consensus", "session": run.session_id,
        "consensus_run": run.pk, "consensus_lesion": 1,
    }
    assert rows[3]["source"] == "imported:external.csv" and rows[3]["session"] is None


def test_it_serves_the_lesion_table_as_csv_with_the_filters(study, run, imported, admin):
    run.measurement_sets.get().rows.filter(lesion=1).update(excluded=True, exclusion_reason="vessel")
    client = client_for(admin)

    default = _csv(client.get(f"/api/v1/studies/{study.pk}/lesion-table/csv/?source=consensus"))
    everything = _csv(client.get(f"/api/v1/studies/{study.pk}/lesion-table/csv/?source=consensus&excluded=include"))

    assert [(r["lesion"], r["portion"]) for r in default] == [("2", "cortical"), ("2", "wm")]
    assert len(everything) == 3 and everything[0]["exclusion_reason"] == "vessel"
    assert list(everything[0])[:5] == ["subject", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm"]


def test_it_counts_lesions_per_patient_like_table_1(study, run, imported, pi):
    response = client_for(pi).get(f"/api/v1/studies/{study.pk}/patient-table/")

    by_subject = {r["subject"]: r for r in response.json()}
    p01 = by_subject["P01"]
    assert (p01["sex"], p01["age_years"], p01["phenotype"]) == ("F", 41.0, "RRMS")
    assert (p01["n_lesions"], p01["n_wm"], p01["n_cortical"], p01["n_mixed"]) == (2, 1, 0, 1)
    assert p01["mean_wm_ppm"] == pytest.approx(0.07) and p01["mean_mixed_cortical_ppm"] == pytest.approx(0.02)
    ext1 = by_subject["EXT1"]
    assert (ext1["n_wm"], ext1["mean_wm_ppm"]) == (2, pytest.approx(0.02))
    assert by_subject["EXT3"]["mean_cortical_ppm"] == pytest.approx(-0.03)
    rows = _csv(client_for(pi).get(f"/api/v1/studies/{study.pk}/patient-table/csv/"))
    assert [r["subject"] for r in rows] == ["EXT1", "EXT2", "EXT3", "P01"]
    assert rows[3]["n_mixed"] == "1"


def test_it_says_there_is_no_snapshot_yet_and_whether_one_is_fresh(study, run, pi, admin,
                                                                    django_capture_on_commit_callbacks):
    client = client_for(pi)
    url = f"/api/v1/studies/{study.pk}/statistics/"

    empty = client.get(url).json()
    assert empty == {"filters": {"source": "all", "excluded": "exclude", "solver": ""}, "up_to_date": False,
                     "snapshot": None, "job": None}

    snapshot = statistics_compute(by=system("test"), study=study)
    fresh = client.get(url).json()
    assert fresh["up_to_date"] is True and fresh["snapshot"]["id"] == snapshot.pk
    assert fresh["snapshot"]["age_seconds"] >= 0
    assert fresh["snapshot"]["result"]["correction"]["method"] == "bonferroni"

    with django_capture_on_commit_callbacks(execute=True):
        client_for(admin).post(f"/api/v1/studies/{study.pk}/lesion-tables/",
                               {"file": uploaded_file("x.csv", IMPORTED_CSV.encode())})
    stale = client.get(url).json()
    assert stale["up_to_date"] is False and stale["snapshot"]["id"] == snapshot.pk
    assert stale["job"]["kind"] == "statistics"  # the import queued the recomputation


def test_it_queues_a_computation_for_a_pi(study, run, pi):
    response = client_for(pi).post(f"/api/v1/studies/{study.pk}/statistics/", {"source": "consensus"}, format="json")

    assert response.status_code == 202
    assert response.json()["kind"] == "statistics" and response.json()["status"] == "queued"
    shown = client_for(pi).get(f"/api/v1/studies/{study.pk}/statistics/?source=consensus").json()
    assert shown["job"]["id"] == response.json()["id"]


def test_it_serves_the_tests_as_csv_with_the_bonferroni_threshold(study, run, imported, pi):
    snapshot = statistics_compute(by=system("test"), study=study)

    rows = _csv(client_for(pi).get(f"/api/v1/studies/{study.pk}/statistics/csv/"))

    by_test = {r["test"]: r for r in rows}
    m = snapshot.result["correction"]["m"]
    assert float(by_test["wm_lesions"]["bonferroni_threshold"]) == pytest.approx(0.05 / m)
    assert float(by_test["wm_lesions"]["mean_ppm"]) == pytest.approx((0.07 + 0.01 + 0.03 + 0.02) / 4)
    assert "cortical_vs_wm_welch" in by_test


def test_it_answers_404_for_the_csv_without_a_snapshot(study, run, pi):
    response = client_for(pi).get(f"/api/v1/studies/{study.pk}/statistics/csv/?source=imported")

    assert response.status_code == 404
    assert response.json()["detail"] == "no statistics snapshot for these filters yet"


def test_it_refuses_unknown_filters(study, pi):
    response = client_for(pi).get(f"/api/v1/studies/{study.pk}/lesion-table/?source=rater1")

    assert response.status_code == 400
    assert response.json()["detail"] == "source must be one of all, consensus, imported, rater:<username>"


def test_it_lists_every_wrong_row_of_an_import(study, admin):
    text = "subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nA,1,wm,wm,x\nA,2,wm,cortical,0.1\n"

    response = client_for(admin).post(f"/api/v1/studies/{study.pk}/lesion-tables/",
                                      {"file": uploaded_file("bad.csv", text.encode())})

    assert response.status_code == 400
    body = response.json()
    assert [r["line"] for r in body["rows"]] == [2, 3]
    assert body["detail"].startswith("2 row error(s); nothing was imported")
    assert client_for(admin).get(f"/api/v1/studies/{study.pk}/lesion-tables/").json() == []


def test_it_imports_and_lists_a_table(study, admin, pi):
    response = client_for(admin).post(f"/api/v1/studies/{study.pk}/lesion-tables/",
                                      {"file": uploaded_file("ext.csv", IMPORTED_CSV.encode()), "name": "Site B"})

    assert response.status_code == 201, response.content
    listed = client_for(pi).get(f"/api/v1/studies/{study.pk}/lesion-tables/").json()
    assert [(t["name"], t["n_rows"], t["uploaded_by"]) for t in listed] == [("Site B", 7, "admin")]


def test_the_schema_describes_the_statistics_routes(admin):
    schema = client_for(admin).get("/api/schema/?format=json").json()

    for path in ("statistics/", "statistics/csv/", "lesion-table/", "lesion-table/csv/", "patient-table/",
                 "patient-table/csv/", "lesion-tables/"):
        assert f"/api/v1/studies/{{id}}/{path}" in schema["paths"] or f"/api/v1/studies/{{pk}}/{path}" in schema["paths"]


def test_it_filters_the_lesion_table_by_solver(study, run, imported, pi):
    client = client_for(pi)

    none = client.get(f"/api/v1/studies/{study.pk}/lesion-table/?solver=toolbox")
    bad = client.get(f"/api/v1/studies/{study.pk}/lesion-table/?solver=Tool%20box")

    assert none.status_code == 200 and none.json() == []  # the run's QSM has no solver; imports have none
    assert bad.status_code == 400 and bad.json()["field"] == "solver"


def test_it_serves_one_raters_lesions_and_refuses_an_unknown_rater(study, run, pi):
    from qsmreview.consensus.models import RaterLesionRow

    RaterLesionRow.objects.create(run=run, rater="rater1", subject="P01", lesion=1, lesion_type="wm", portion="wm",
                                  n_voxels=5, volume_mm3=5.0, relative_susceptibility_ppm=0.03)
    client = client_for(pi)

    rows = client.get(f"/api/v1/studies/{study.pk}/lesion-table/?source=rater:rater1").json()
    unknown = client.get(f"/api/v1/studies/{study.pk}/lesion-table/csv/?source=rater:nobody")
    queued = client.post(f"/api/v1/studies/{study.pk}/statistics/", {"source": "rater:rater1"}, format="json")

    assert [(r["lesion"], r["source"], r["relative_susceptibility_ppm"]) for r in rows] == [("1", "rater:rater1", 0.03)]
    assert unknown.status_code == 400 and "no rater 'nobody'" in unknown.json()["detail"]
    assert queued.status_code == 202
