"""The consensus REST API end to end on the session worked by hand (tests/consensus/conftest.py)."""

from __future__ import annotations

import csv
import io

import pytest

from qsmreview.consensus.services import consensus_run
from qsmreview.jobs.models import Job
from tests.api.world import as_bytes, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(rated):
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


def test_it_queues_a_consensus_and_says_why_not_when_one_is_queued(rated):
    client = client_for(rated.admin)
    url = f"/api/v1/sessions/{rated.session.pk}/consensus/"

    refused = client.post(url, {}, format="json")
    assert refused.status_code == 409 and "already queued" in refused.json()["detail"]

    Job.objects.filter(kind="consensus").update(status="succeeded")
    response = client.post(url, {}, format="json")

    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).kind == "consensus"


def test_it_names_the_missing_input(inputs_session, admin):
    response = client_for(admin).post(f"/api/v1/sessions/{inputs_session[0].pk}/consensus/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{inputs_session[0]}: 0 rater(s) submitted; the consensus needs at least 2",
        "code": "invalid",
    }


def test_it_lists_runs_and_serves_the_lesion_table_as_json_and_csv(run, rated):
    client = client_for(rated.admin)

    runs = client.get(f"/api/v1/sessions/{rated.session.pk}/consensus/").json()
    assert [(r["id"], r["current"], r["measurements"]["number"]) for r in runs] == [(run.pk, True, 1)]
    assert runs[0]["tissue_sha256"] == rated.tissue.sha256

    rows = client.get(f"/api/v1/consensus/{run.pk}/lesions/").json()
    assert [(r["lesion"], r["lesion_type"], r["portion"], r["n_voxels"]) for r in rows] == [(1, "wm", "wm", 27), (2, "wm", "wm", 27)]
    assert rows[0]["relative_susceptibility_ppm"] == pytest.approx(0.08, abs=1e-6)

    response = client.get(f"/api/v1/consensus/{run.pk}/lesions/csv/")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(table[0])[:5] == ["subject", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm"]
    assert [(r["subject"], r["lesion"], r["raters"]) for r in table] == [
        ("P01", "1", "rater1;rater2;rater3"), ("P01", "2", "rater1;rater2")]
    assert float(table[1]["relative_susceptibility_ppm"]) == pytest.approx(0.03, abs=1e-6)


def test_it_serves_candidates_agreement_and_label_maps(run, rated):
    client = client_for(rated.admin)

    candidates = client.get(f"/api/v1/consensus/{run.pk}/candidates/").json()
    assert sorted(c["status"] for c in candidates) == ["lesion", "lesion", "rejected"]
    agreement = client.get(f"/api/v1/consensus/{run.pk}/agreement/").json()
    assert agreement["raters"] == ["rater1", "rater2", "rater3"]
    assert agreement["agreement"]["pairs"][0]["f1"] == pytest.approx(0.8)

    measurements = run.measurement_sets.get()
    download = client.get(f"/api/v1/consensus/{run.pk}/lesion-labels/")
    assert download.status_code == 200 and download["ETag"] == f'"{measurements.lesion_labels_sha256}"'
    with measurements.lesion_labels.open("rb") as fh:
        assert as_bytes(download) == fh.read()
    cached = client.get(f"/api/v1/consensus/{run.pk}/reference-labels/",
                        HTTP_IF_NONE_MATCH=f'"{measurements.reference_labels_sha256}"')
    assert cached.status_code == 304


def test_it_excludes_restores_and_keeps_every_measurement_set(run, rated):
    client = client_for(rated.admin)

    excluded = client.post(f"/api/v1/consensus/{run.pk}/exclusions/",
                           {"lesion": 2, "reason_code": "vessel", "reason": "a vein"}, format="json")
    assert excluded.status_code == 201 and excluded.json()["by"] == "admin"
    rows = client.get(f"/api/v1/consensus/{run.pk}/lesions/").json()
    assert [(r["lesion"], r["excluded"], r["exclusion_reason"]) for r in rows] == [(1, False, ""), (2, True, "vessel")]

    restored = client.post(f"/api/v1/consensus-decisions/{excluded.json()['id']}/revert/", {"reason": "no"}, format="json")
    assert restored.status_code == 201
    assert not any(r["excluded"] for r in client.get(f"/api/v1/consensus/{run.pk}/lesions/").json())
    older = client.get(f"/api/v1/consensus/{run.pk}/lesions/?set=2").json()
    assert [r["excluded"] for r in older] == [False, True]
    trail = client.get(f"/api/v1/consensus/{run.pk}/decisions/").json()
    assert [(d["kind"], d["reverted"]) for d in trail] == [("exclude", True), ("revert", False)]


def test_it_answers_400_for_bad_input_naming_the_field(run, rated):
    client = client_for(rated.admin)

    unknown = client.post(f"/api/v1/consensus/{run.pk}/class-decisions/",
                          {"lesion": 1, "lesion_type": "wm", "reason": "x", "color": "red"}, format="json")
    outside = client.post(f"/api/v1/consensus/{run.pk}/voxel-removals/",
                          {"target": "reference", "voxels": [[99, 0, 0]], "reason": "x"}, format="json")
    bad_set = client.get(f"/api/v1/consensus/{run.pk}/lesions/?set=abc")

    assert unknown.status_code == 400 and unknown.json()["field"] == "color"
    assert outside.status_code == 400 and outside.json()["detail"] == "voxel [99, 0, 0] is outside the 32x32x16 grid"
    assert bad_set.status_code == 400 and bad_set.json()["field"] == "set"


def test_it_answers_a_rater_exactly_as_for_a_run_that_does_not_exist(run, rated):
    rater = client_for(rated.raters["rater1"])

    for suffix in ("", "lesions/", "lesions/csv/", "lesion-labels/", "agreement/"):
        hidden = rater.get(f"/api/v1/consensus/{run.pk}/{suffix}")
        absent = rater.get(f"/api/v1/consensus/{run.pk + 1000}/{suffix}")
        assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json()) == (
            404, {"detail": "no such consensus run", "code": "not_found"})


def test_it_tells_a_pi_that_only_admins_decide(run, rated, pi):
    response = client_for(pi).post(f"/api/v1/consensus/{run.pk}/remeasure/")

    assert response.status_code == 403
    assert response.json() == {"detail": "only the study's admins can recompute measurements", "code": "forbidden"}
