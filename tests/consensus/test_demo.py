"""The demo's consensus (qsmreview.consensus.demo, run by ``demo_load``): the two rated sessions
show their lesion table at once, measured on the demo's QSM (the phantom's truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qsmreview.consensus.models import ConsensusRun

SMALL = {"shape": (40, 40, 20), "voxel_size": (4.5, 4.5, 6.0)}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def demo():
    from qsmreview.studies.demo import demo_load

    return demo_load(**SMALL)


def test_it_computes_the_consensus_of_the_two_rated_sessions_on_the_demo_qsm(demo):
    from qsmreview.studies.models import Series

    assert demo.consensus_computed == ["MS001", "MS002"]
    runs = {r.session.subject.code: r for r in ConsensusRun.objects.filter(current=True).select_related("session__subject")}
    assert sorted(runs) == ["MS001", "MS002"]
    for code, run in runs.items():
        truth = Series.objects.get(session=run.session, kind="qsm", label="truth", is_current=True)
        assert (run.qsm_series_id, run.qsm_sha256) == (truth.pk, truth.sha256)
        assert [r["rater"] for r in run.revisions] == ["rater1", "rater2", "rater3"]
        rows = list(run.measurement_sets.get(current=True).rows.all())
        assert rows, code
        measured = [r for r in rows if r.relative_susceptibility_ppm is not None]
        assert measured, code
        for row in measured:  # relative = lesion mean - reference mean, as the table says
            assert row.relative_susceptibility_ppm == pytest.approx(row.lesion_mean_ppm - row.reference_mean_ppm, abs=1e-6)
        assert any(c.status == "rejected" for c in run.candidates.all()), "rater2's false positive"


def test_it_loads_again_without_a_second_run(demo):
    from qsmreview.studies.demo import demo_load

    again = demo_load(**SMALL)

    assert again.consensus_computed == [] and not again.created_anything
    assert ConsensusRun.objects.count() == 2


def test_the_queued_job_finds_the_demo_run_up_to_date(demo):
    from qsmreview.consensus.services import consensus_run
    from qsmreview.access import system

    run = ConsensusRun.objects.get(session__subject__code="MS001")

    same = consensus_run(by=system("job"), session=run.session, force=False)

    assert same.pk == run.pk and ConsensusRun.objects.count() == 2


def test_a_new_pi_sees_the_table_at_once(demo, client):
    client.login(username="pi", password="pi-demo")
    run = ConsensusRun.objects.get(session__subject__code="MS001")

    page = client.get(f"/sessions/{run.session_id}/consensus/").content.decode()

    assert 'data-testid="lesion-table"' in page and "rater1, rater2" in page
    assert np.isfinite(run.measurement_sets.get(current=True).rows.first().volume_mm3)


def test_its_table_shows_the_phantoms_signs_as_a_new_user_sees_them(demo):
    """What the tour showed on the full demo: white matter lesions (and WM portions) above their
    normal-appearing white matter, cortical ones (and cortical portions) below their cortex, as
    the phantom was made (recon.phantom: WM lesions +0.015..+0.04 ppm, cortical -0.012..-0.03)."""
    rows = [
        r
        for run in ConsensusRun.objects.filter(current=True)
        for r in run.measurement_sets.get(current=True).rows.all()
        if r.relative_susceptibility_ppm is not None
    ]
    by_portion = {p: [r.relative_susceptibility_ppm for r in rows if r.portion == p] for p in ("wm", "cortical")}

    assert by_portion["wm"] and by_portion["cortical"]
    assert np.mean(by_portion["wm"]) > 0.005 and np.mean(by_portion["cortical"]) < -0.005
