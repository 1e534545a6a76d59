"""The demo's statistics: a second study with the synthetic reference cohort and the phantom
study's own statistics, computed at load (the loader on a small grid, as tests/test_demo.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from qsmreview.stats.synthetic import REFERENCE_TABLE3

pytestmark = pytest.mark.django_db

SMALL = {"shape": (40, 40, 20), "voxel_size": (4.5, 4.5, 6.0)}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _group(snapshot, name):
    return next(g for g in snapshot.result["groups"] if g["name"] == name)


def test_it_loads_the_reference_cohort_with_its_statistics_at_once() -> None:
    from qsmreview.reports.demo import COHORT_STUDY_NAME
    from qsmreview.reports.filters import DEFAULT
    from qsmreview.reports.selectors import latest_snapshot
    from qsmreview.studies.demo import DEMO_STUDY_NAME, demo_load
    from qsmreview.studies.models import Study

    result = demo_load(**SMALL)

    cohort = Study.objects.get(name=COHORT_STUDY_NAME)
    assert cohort.subjects.count() == 14
    table = cohort.imported_lesion_tables.get()
    assert table.rows.values("subject", "lesion").distinct().count() == 147 + 27 + 9
    snapshot = latest_snapshot(cohort, DEFAULT)
    for name in ("wm_lesions", "cortical_lesions", "mixed_wm_portions", "mixed_cortical_portions",
                 "patient_wm_lesions"):
        mean, sd, n, _ = REFERENCE_TABLE3[name]  # the reference study's Table 3
        group = _group(snapshot, name)
        assert (group["n"], round(group["mean_ppm"], 3), round(group["sd_ppm"], 3)) == (n, mean, sd), name
    assert snapshot.result["correction"]["m"] == 6
    # the phantom study's consensus (MS001, MS002) has its own snapshot
    phantom = latest_snapshot(Study.objects.get(name=DEMO_STUDY_NAME), DEFAULT)
    assert {s["subject"] for s in phantom.inputs["measurement_sets"]} == {"MS001", "MS002"}
    assert result.study.name == DEMO_STUDY_NAME

    # The PI opens the dashboard and sees Table 3 and the figures' data, no job needed.
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="pi"))
    page = client.get(f"/studies/{cohort.pk}/reports/").content.decode()
    assert 'data-testid="up-to-date"' in page and 'data-testid="job-progress"' not in page
    assert "α/m = 0.05/6 = <strong data-testid=\"bonferroni-threshold\">0.0083</strong>" in page


def test_it_loads_the_cohort_again_without_duplicating_it() -> None:
    from qsmreview.reports.models import ImportedLesionTable, StatisticsSnapshot
    from qsmreview.studies.demo import demo_load

    demo_load(**SMALL)
    counts = (ImportedLesionTable.objects.count(), StatisticsSnapshot.objects.count())

    demo_load(**SMALL)

    assert (ImportedLesionTable.objects.count(), StatisticsSnapshot.objects.count()) == counts


def test_the_phantom_study_has_each_raters_own_lesions_measured_as_the_phantom_was_made() -> None:
    from qsmreview.access import system
    from qsmreview.reports.filters import Filters
    from qsmreview.reports.selectors import lesion_table, raters
    from qsmreview.reports.services import statistics_compute
    from qsmreview.studies.demo import DEMO_STUDY_NAME, demo_load
    from qsmreview.studies.models import Study

    demo_load(**SMALL)
    phantom = Study.objects.get(name=DEMO_STUDY_NAME)

    assert raters(phantom) == ["rater1", "rater2", "rater3"]
    consensus = lesion_table(phantom, Filters(source="consensus")).rows
    for name in raters(phantom):
        table = lesion_table(phantom, Filters(source=f"rater:{name}"))
        assert all(r["rater_measured"] for r in table.inputs["rater_runs"]) and len(table.inputs["rater_runs"]) == 2
        assert table.rows and {r["subject"] for r in table.rows} == {"MS001", "MS002"}
        # The phantom's lesions are diamagnetic in cortex and paramagnetic in white matter against
        # their references: each reader's own table says so too, as the consensus does.
        snapshot = statistics_compute(by=system("test"), study=phantom, filters=Filters(source=f"rater:{name}"))
        cortical, mixed_wm = _group(snapshot, "cortical_lesions"), _group(snapshot, "mixed_wm_portions")
        assert cortical["n"] > 0 and cortical["mean_ppm"] < 0, name
        assert mixed_wm["n"] > 0 and mixed_wm["mean_ppm"] > 0, name
    assert {r["lesion_type"] for r in consensus} == {"cortical", "mixed"}  # the small grid's phantom
