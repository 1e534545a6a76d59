"""Snapshots: what goes in (filters, exclusions, imported tables), the numbers (against scipy),
provenance, up-to-date reuse, requests and the debounced automatic trigger."""

from __future__ import annotations

import pytest
from scipy import stats

from qsmreview.access import system
from qsmreview.errors import NotFound, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.reports.filters import DEFAULT, Filters, parse_filters
from qsmreview.reports.models import StatisticsSnapshot
from qsmreview.reports.services import statistics_compute, statistics_request


def _group(snapshot, name):
    return next(g for g in snapshot.result["groups"] if g["name"] == name)


def test_it_analyses_consensus_and_imported_lesions_as_scipy_does(study, run, imported, admin):
    snapshot = statistics_compute(by=admin, study=study)

    wm = [0.07, 0.01, 0.03, 0.02]  # P01 lesion 1, then the imported WM lesions
    expected = stats.ttest_1samp(wm, 0.0)
    group = _group(snapshot, "wm_lesions")
    assert group["n"] == 4 and group["mean_ppm"] == pytest.approx(sum(wm) / 4)
    assert group["test"]["statistic"] == pytest.approx(expected.statistic)
    assert group["test"]["p"] == pytest.approx(expected.pvalue)
    cortical = _group(snapshot, "cortical_lesions")
    assert cortical["n"] == 2 and cortical["mean_ppm"] == pytest.approx(-0.02)
    # patient level: one value per patient, the mean of their WM lesions
    patients = [0.07, 0.02, 0.02]
    assert _group(snapshot, "patient_wm_lesions")["mean_ppm"] == pytest.approx(sum(patients) / 3)
    assert snapshot.result["n_rows"] == 3 + 7


def test_it_records_provenance(study, run, imported, admin):
    snapshot = statistics_compute(by=admin, study=study)

    assert snapshot.inputs["measurement_sets"] == [
        {"id": run.measurement_sets.get().pk, "number": 1, "consensus_run": run.pk,
         "session": run.session_id, "subject": "P01"}
    ]
    assert snapshot.inputs["imported_tables"] == [{"id": imported.pk, "name": "external.csv", "sha256": imported.sha256}]
    assert {"python", "numpy", "scipy", "statsmodels", "qsmreview"} <= set(snapshot.versions)
    assert snapshot.requested_by == admin and snapshot.filters == {"source": "all", "excluded": "exclude"}
    assert len(snapshot.input_digest) == 64


def test_it_leaves_qc_excluded_lesions_out_unless_asked(study, run, admin):
    run.measurement_sets.get().rows.filter(lesion=1).update(excluded=True, exclusion_reason="vessel")

    default = statistics_compute(by=admin, study=study)
    included = statistics_compute(by=admin, study=study, filters=Filters(excluded="include"))

    assert _group(default, "wm_lesions")["n"] == 0
    assert _group(included, "wm_lesions")["n"] == 1
    assert _group(included, "wm_lesions")["mean_ppm"] == pytest.approx(0.07)


def test_it_filters_by_source(study, run, imported, admin):
    consensus = statistics_compute(by=admin, study=study, filters=Filters(source="consensus"))
    external = statistics_compute(by=admin, study=study, filters=Filters(source="imported"))

    assert consensus.result["n_rows"] == 3 and consensus.inputs["imported_tables"] == []
    assert external.result["n_rows"] == 7 and external.inputs["measurement_sets"] == []


def test_it_reuses_an_up_to_date_snapshot_and_makes_a_new_one_when_inputs_change(study, run, admin):
    from qsmreview.reports.services import lesion_table_import

    first = statistics_compute(by=system("test"), study=study)
    again = statistics_compute(by=system("test"), study=study)
    assert again.pk == first.pk

    lesion_table_import(by=admin, study=study, name="more.csv",
                        content=b"subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nZ1,1,wm,wm,0.1\n")
    changed = statistics_compute(by=system("test"), study=study)

    assert changed.pk != first.pk and changed.input_digest != first.input_digest
    assert StatisticsSnapshot.objects.filter(study=study).count() == 2


def test_it_names_the_row_when_the_tables_clash(study, run, admin):
    from qsmreview.reports.services import lesion_table_import

    lesion_table_import(by=admin, study=study, name="clash.csv",
                        content=b"subject,lesion,lesion_type,portion,relative_susceptibility_ppm\nP01,1,wm,wm,0.1\n")

    with pytest.raises(ValidationFailed, match="P01"):
        statistics_compute(by=admin, study=study)


@pytest.mark.parametrize("who", ["rater", "outsider", "other_admin"])
def test_it_hides_the_statistics_from_raters_and_outsiders(study, run, who, request):
    user = request.getfixturevalue(who)

    with pytest.raises(NotFound, match="no such study"):
        statistics_compute(by=user, study=study)
    with pytest.raises(NotFound, match="no such study"):
        statistics_request(by=user, study=study)


def test_it_lets_a_pi_ask_and_debounces_a_second_request(study, run, pi):
    job = statistics_request(by=pi, study=study, filters=Filters(excluded="include"))
    twin = statistics_request(by=pi, study=study, filters=Filters(excluded="include"))

    assert twin.pk == job.pk
    assert job.kind == "statistics" and job.created_by is None
    assert job.parameters["filters"] == {"source": "all", "excluded": "include"}
    assert job.parameters["requested_by"] == pi.pk
    other = statistics_request(by=pi, study=study)  # other filters: another job
    assert other.pk != job.pk


def test_a_qc_exclusion_queues_the_statistics_once_it_commits(study, run, admin, django_capture_on_commit_callbacks):
    from qsmreview.consensus.services import consensus_exclude

    with django_capture_on_commit_callbacks(execute=True):
        consensus_exclude(by=admin, run=run, lesion=1, reason_code="vessel", reason="a vein")
        consensus_exclude(by=admin, run=run, lesion=2, reason_code="artifact", reason="a fold")

    jobs = Job.objects.filter(kind="statistics", study=study)
    assert jobs.count() == 1  # two new measurement sets, one job (debounced)
    assert jobs.get().parameters["filters"] == {"source": "all", "excluded": "exclude"}
    assert "measurements" in jobs.get().parameters["trigger"]


@pytest.mark.parametrize("data", [{"source": "rater1"}, {"excluded": "yes"}, {"source": 3}, {"solver": "ADMM; drop"}])
def test_it_refuses_unknown_filters(data):
    with pytest.raises(ValidationFailed):
        parse_filters(data)


def test_it_reads_each_session_s_newest_run_on_the_asked_solver(study, session, admin, imported):
    from qsmreview.consensus.models import ConsensusRun
    from qsmreview.reports.selectors import solvers
    from tests.api.world import make_series
    from tests.consensus.factories import make_consensus_run

    toolbox = make_series(session, "qsm", label="toolbox", seed=1)
    toolbox.provenance = {"parameters": {"solver": "toolbox"}}
    toolbox.save(update_fields=["provenance"])
    old = make_consensus_run(session, current=False)
    ConsensusRun.objects.filter(pk=old.pk).update(qsm_series=toolbox)
    old.measurement_sets.get().rows.filter(lesion=1).update(relative_susceptibility_ppm=0.09)
    admm = make_series(session, "qsm", label="admm", seed=2)
    admm.provenance = {"parameters": {"solver": "admm"}}
    admm.save(update_fields=["provenance"])
    current = make_consensus_run(session)
    ConsensusRun.objects.filter(pk=current.pk).update(qsm_series=admm)

    on_toolbox = statistics_compute(by=admin, study=study, filters=Filters(solver="toolbox"))
    on_current = statistics_compute(by=admin, study=study, filters=Filters(source="consensus"))

    assert solvers(study) == ["admm", "toolbox"]
    assert [s["consensus_run"] for s in on_toolbox.inputs["measurement_sets"]] == [old.pk]
    assert on_toolbox.inputs["imported_tables"] == []
    assert _group(on_toolbox, "wm_lesions")["mean_ppm"] == pytest.approx(0.09)
    assert _group(on_current, "wm_lesions")["mean_ppm"] == pytest.approx(0.07)
    assert on_toolbox.filters_key == "source=all;excluded=exclude;solver=toolbox"


def _rater_lesions(run, rater, rows):
    """Store a rater's own lesions on a factory run, as consensus_run does."""
    from qsmreview.consensus.models import ConsensusRun, RaterLesionRow

    RaterLesionRow.objects.bulk_create(
        RaterLesionRow(run=run, rater=rater, subject="P01", lesion=lesion, lesion_type=kind, portion=portion,
                       n_voxels=5, volume_mm3=5.0, relative_susceptibility_ppm=value, extras={"candidate": lesion})
        for lesion, kind, portion, value in rows
    )
    summary = {**run.summary, "rater_lesions": {**(run.summary or {}).get("rater_lesions", {}), rater: len(rows)}}
    ConsensusRun.objects.filter(pk=run.pk).update(summary=summary)
    run.refresh_from_db()


def test_it_analyses_one_raters_own_lesions(study, run, imported, admin):
    from qsmreview.reports.selectors import lesion_table, raters

    _rater_lesions(run, "rater2", [(1, "wm", "wm", 0.06), (2, "wm", "wm", 0.02), (3, "cortical", "cortical", -0.01)])
    _rater_lesions(run, "rater1", [(1, "wm", "wm", 0.5)])

    snapshot = statistics_compute(by=admin, study=study, filters=Filters(source="rater:rater2"))

    wm = _group(snapshot, "wm_lesions")
    assert wm["n"] == 2 and wm["mean_ppm"] == pytest.approx(0.04)
    assert wm["test"]["p"] == pytest.approx(stats.ttest_1samp([0.06, 0.02], 0.0).pvalue)
    assert _group(snapshot, "cortical_lesions")["n"] == 1
    assert snapshot.result["n_rows"] == 3  # neither the consensus nor the imported tables
    assert snapshot.inputs["rater"] == "rater2" and snapshot.inputs["imported_tables"] == []
    assert snapshot.inputs["rater_runs"] == [
        {"consensus_run": run.pk, "session": run.session_id, "subject": "P01", "rater_measured": True}
    ]
    assert snapshot.filters_key == "source=rater:rater2;excluded=exclude"
    table = lesion_table(study, Filters(source="rater:rater2"))
    assert {r["source"] for r in table.rows} == {"rater:rater2"} and table.rows[0]["candidate"] == 1
    assert raters(study) == ["rater1", "rater2", "rater3"]


def test_a_raters_table_says_which_runs_predate_it(study, run, admin):
    from qsmreview.reports.selectors import lesion_table

    table = lesion_table(study, Filters(source="rater:rater3"))

    assert table.rows == [] and table.inputs["rater_runs"][0]["rater_measured"] is False
    _rater_lesions(run, "rater3", [])  # measured: rater3 marked nothing that counts
    assert lesion_table(study, Filters(source="rater:rater3")).inputs["rater_runs"][0]["rater_measured"] is True


def test_it_refuses_a_rater_the_study_does_not_have(study, run):
    from qsmreview.reports.selectors import study_filters

    with pytest.raises(ValidationFailed, match="no rater 'rater9'"):
        study_filters(study, {"source": "rater:rater9"})
    assert study_filters(study, {"source": "rater:rater1"}).rater == "rater1"


@pytest.mark.parametrize("source", ["rater:", "rater:a b", "rater:" + "x" * 151, "rater:x\x00"])
def test_it_refuses_a_malformed_rater_source(source):
    with pytest.raises(ValidationFailed, match="rater's username"):
        parse_filters({"source": source})


def test_a_change_while_the_job_computes_is_computed_before_the_job_ends(study, run, admin, pi):
    from qsmreview.reports.selectors import lesion_table
    from qsmreview.reports.services import lesion_table_import, statistics_job_compute
    from tests.reports.conftest import IMPORTED_CSV

    job = statistics_request(by=pi, study=study)
    changed = []

    def progress(fraction, stage):
        if stage == "analysing" and not changed:  # an import commits while the job analyses
            changed.append(lesion_table_import(by=admin, study=study, name="late.csv", content=IMPORTED_CSV.encode()))

    snapshot = statistics_job_compute(job=job, filters=DEFAULT, trigger="test", progress=progress)

    made = list(StatisticsSnapshot.objects.filter(job=job).order_by("pk"))
    assert len(made) == 2 and made[-1].pk == snapshot.pk
    assert made[0].inputs["imported_tables"] == [] and snapshot.inputs["imported_tables"][0]["name"] == "late.csv"
    assert snapshot.input_digest == lesion_table(study, DEFAULT).digest
    assert snapshot.trigger == "the measurements changed while the statistics were computed"
