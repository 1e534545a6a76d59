import pytest

from qsmreview.errors import Conflict, Forbidden, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.processing.services import processing_submit, processing_submit_study
from qsmreview.studies.models import Session, Subject

pytestmark = pytest.mark.django_db


def test_it_refuses_qsm_without_a_magnitude(admin, session):
    with pytest.raises(ValidationFailed, match="no T2\\* magnitude series uploaded"):
        processing_submit(session=session, kind="qsm", by=admin)
    assert not Job.objects.exists()


def test_it_refuses_qsm_without_a_phase(admin, session, phantom):
    from tests.fixtures.phantom import store

    store(session, "t2star_mag", phantom.magnitude, phantom.affine, echo_times_s=list(phantom.te))
    with pytest.raises(ValidationFailed, match="no T2\\* phase series uploaded"):
        processing_submit(session=session, kind="qsm", by=admin)


@pytest.mark.parametrize("who", ["rater", "pi", "other_admin"])
def test_it_lets_only_the_study_admins_run_jobs(request, who, phantom_session):
    user = request.getfixturevalue(who)
    with pytest.raises(Forbidden, match="only the study's admins"):
        processing_submit(session=phantom_session, kind="qsm", by=user)


def test_it_takes_qsm_parameters_from_the_study_protocol(admin, study, phantom_session):
    study.protocol = {"qsm": {"erosion_mm": 3.0, "solver": "toolbox"}}
    study.save(update_fields=["protocol"])
    job = processing_submit(session=phantom_session, kind="qsm", by=admin)
    assert job.parameters["erosion_mm"] == 3.0
    assert job.parameters["solver"] == "toolbox"
    assert job.parameters["lam"] == 1000.0
    assert job.status == "queued"
    assert job.session == phantom_session and job.study == study


def test_it_refuses_a_second_identical_submission_while_one_is_active(admin, phantom_session):
    first = processing_submit(session=phantom_session, kind="qsm", by=admin)
    with pytest.raises(Conflict, match=f"#{first.pk}"):
        processing_submit(session=phantom_session, kind="qsm", by=admin)
    # different parameters are different work, and are accepted
    processing_submit(session=phantom_session, kind="qsm", by=admin, parameters={"erosion_mm": 3})
    assert Job.objects.filter(kind="qsm").count() == 2


def test_it_accepts_the_same_submission_again_once_the_first_finished(admin, phantom_session):
    first = processing_submit(session=phantom_session, kind="qsm", by=admin)
    Job.objects.filter(pk=first.pk).update(status="failed")
    again = processing_submit(session=phantom_session, kind="qsm", by=admin)
    assert again.pk != first.pk


def test_it_refuses_unknown_kinds_and_parameters(admin, phantom_session):
    with pytest.raises(ValidationFailed, match="unknown processing kind 'segment'"):
        processing_submit(session=phantom_session, kind="segment", by=admin)
    with pytest.raises(ValidationFailed, match="unknown QSM parameter"):
        processing_submit(session=phantom_session, kind="qsm", by=admin, parameters={"lambda": 1})
    with pytest.raises(ValidationFailed, match="brain mask takes no parameters"):
        processing_submit(session=phantom_session, kind="brain_mask", by=admin, parameters={"x": 1})


def test_it_refuses_coregistration_without_t1_or_flair(admin, phantom_session):
    with pytest.raises(ValidationFailed, match="no T1 or FLAIR series to coregister"):
        processing_submit(session=phantom_session, kind="coregister", by=admin)


def test_it_refuses_tissue_from_a_t1_not_yet_on_the_t2star_grid(admin, phantom_session, phantom):
    with pytest.raises(ValidationFailed, match="run coregistration first"):
        processing_submit(session=phantom_session, kind="tissue", by=admin)


def test_batch_submits_sessions_with_inputs_and_says_why_others_were_skipped(admin, study, phantom_session):
    bare = Session.objects.create(subject=Subject.objects.create(study=study, code="P02"), label="01")
    result = processing_submit_study(study=study, kind="qsm", by=admin)
    assert [job.session for job in result.submitted] == [phantom_session]
    assert [(s, r) for s, r in result.skipped] == [(bare, f"{bare}: no T2* magnitude series uploaded")]
    again = processing_submit_study(study=study, kind="qsm", by=admin)
    assert again.submitted == []
    assert "already" in dict(again.skipped)[phantom_session]


def test_batch_refuses_bad_parameters_outright(admin, study, phantom_session):
    with pytest.raises(ValidationFailed, match="unknown QSM parameter"):
        processing_submit_study(study=study, kind="qsm", by=admin, parameters={"nope": 1})
    assert not Job.objects.exists()


def test_it_refuses_qsm_when_magnitude_and_phase_echo_counts_differ(admin, session, phantom):
    from tests.fixtures.phantom import store

    store(session, "t2star_mag", phantom.magnitude, phantom.affine, echo_times_s=list(phantom.te))
    for i, te in enumerate((0.005, 0.012), start=1):
        store(session, "t2star_phase", phantom.phase, phantom.affine, label=f"echo-{i}", echo_times_s=[te])
    with pytest.raises(ValidationFailed, match="magnitude has 1 echo\\(es\\) but phase has 2"):
        processing_submit(session=session, kind="qsm", by=admin)
