"""The consensus pages: what admins and PIs read, the forms admins use, and the study's pooled
agreement worked by hand."""

from __future__ import annotations

import pytest

from qsmreview.consensus.models import ConsensusRun
from qsmreview.consensus.selectors import pooled_agreement
from qsmreview.consensus.services import consensus_run
from tests.fixtures.cast import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(rated):
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


def current_rows(run: ConsensusRun) -> dict:
    return {r.lesion: r for r in ConsensusRun.objects.get(pk=run.pk).measurement_sets.get(current=True).rows.all()}


def test_it_shows_an_admin_the_table_candidates_agreement_and_forms(run, rated):
    page = page_client(rated.admin).get(f"/sessions/{rated.session.pk}/consensus/").content.decode()

    assert 'data-testid="lesion-table"' in page and 'data-lesion="2"' in page
    assert "0.0800" in page and "0.0300" in page  # relative susceptibility, ppm
    assert "rater1, rater2, rater3" in page and "Rejected (minority)" in page
    assert "0.800" in page  # F1 of rater1 vs rater2
    assert 'name="action" value="class"' in page and 'data-testid="request-consensus"' in page


def test_it_shows_a_pi_the_same_results_without_forms(run, rated, pi):
    page = page_client(pi).get(f"/sessions/{rated.session.pk}/consensus/").content.decode()

    assert "0.0800" in page
    assert 'name="action"' not in page


def test_it_excludes_and_restores_a_lesion_from_the_qc_page(run, rated):
    client = page_client(rated.admin)
    url = f"/sessions/{rated.session.pk}/consensus/qc/"

    response = client.post(url, {"action": "exclude", "lesion": "2", "reason_code": "artifact", "reason": "streaks"})

    assert response.status_code == 302 and response["Location"] == url
    assert current_rows(run)[2].exclusion_reason == "artifact"
    page = client.get(url).content.decode()
    assert "excluded: artifact" in page and "streaks" in page
    decision = ConsensusRun.objects.get(pk=run.pk).decisions.get()
    client.post(url, {"action": "revert", "decision": str(decision.pk), "reason": "not an artifact"})
    assert current_rows(run)[2].excluded is False


def test_it_decides_a_class_from_the_consensus_page_and_says_what_is_missing(run, rated):
    client = page_client(rated.admin)
    url = f"/sessions/{rated.session.pk}/consensus/"

    client.post(url, {"action": "class", "lesion": "1", "lesion_type": "cortical", "reason": "on the cortex"})
    refused = client.post(url, {"action": "class", "lesion": "1", "lesion_type": "wm", "reason": ""}, follow=True)

    assert (current_rows(run)[1].lesion_type, current_rows(run)[1].rule_type) == ("cortical", "wm")
    assert "a reason is required to decide a lesion&#x27;s class" in refused.content.decode()


def test_it_refuses_a_pis_post_with_the_reason(run, rated, pi):
    response = page_client(pi).post(
        f"/sessions/{rated.session.pk}/consensus/qc/",
        {"action": "exclude", "lesion": "1", "reason_code": "vessel", "reason": "x"},
        follow=True,
    )

    assert "only the study&#x27;s admins can exclude lesions" in response.content.decode()
    assert not ConsensusRun.objects.get(pk=run.pk).decisions.exists()


def test_it_answers_a_raters_post_with_404(run, rated):
    response = page_client(rated.raters["rater1"]).post(
        f"/sessions/{rated.session.pk}/consensus/qc/", {"action": "exclude", "lesion": "1", "reason_code": "vessel", "reason": "x"}
    )

    assert response.status_code == 404
    assert not ConsensusRun.objects.get(pk=run.pk).decisions.exists()


def test_it_links_the_consensus_from_the_study_and_assignments_pages(run, rated):
    client = page_client(rated.admin)
    study = rated.session.subject.study

    for url in (f"/studies/{study.pk}/", f"/studies/{study.pk}/assignments/"):
        assert f'href="/studies/{study.pk}/consensus/"' in client.get(url).content.decode()
    overview = client.get(f"/studies/{study.pk}/consensus/").content.decode()
    assert f'href="/sessions/{rated.session.pk}/consensus/"' in overview and "0.800" in overview


def _pair(n_reference: int, n_tested: int, detected: int, tested_true: int, dice: float) -> dict:
    return {"reference": "rater1", "tested": "rater2", "n_reference": n_reference, "n_tested": n_tested,
            "detected": detected, "tested_true": tested_true, "dice": dice}


def test_it_pools_detection_over_sessions_by_summing_lesions():
    runs = [ConsensusRun(agreement={"pairs": [_pair(2, 3, 2, 2, 0.9)]}),
            ConsensusRun(agreement={"pairs": [_pair(3, 2, 1, 1, 0.5)]})]

    (pair,) = pooled_agreement(runs)["pairs"]

    # 3 of 5 reference lesions detected, 3 of 5 tested lesions true: F1 = 0.6 (not the mean of 0.8 and 0.4)
    assert (pair.sessions, pair.sensitivity, pair.ppv) == (2, 0.6, 0.6)
    assert pair.f1 == pytest.approx(0.6) and pair.mean_dice == pytest.approx(0.7)
