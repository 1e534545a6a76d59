"""A study's consensus settings: defaults, audited changes that the next consensus uses, who may
read and change them (service, API and page)."""

from __future__ import annotations

import pytest

from qsmreview.consensus.models import ConsensusSettings
from qsmreview.consensus.services import consensus_run, up_to_date_run
from qsmreview.consensus.inputs import consensus_inputs
from qsmreview.consensus.study_settings import consensus_settings_update, settings_rows, study_params
from qsmreview.errors import Forbidden, NotFound, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.lesions.params import ConsensusParams
from tests.api.world import client_for
from tests.fixtures.cast import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(rated):
    return consensus_run(by=rated.admin, session=rated.session, trigger="test")


def test_it_starts_from_the_reference_studys_defaults(study):
    assert study_params(study) == ConsensusParams()
    rows = {r["name"]: r for r in settings_rows(study)}
    assert rows["cortical_fraction_cortical"]["value"] == rows["cortical_fraction_cortical"]["default"] == 0.75
    assert rows["majority"]["value"] is None and rows["reference_max_distance_vox"]["value"] == 10.0
    assert "connectivity" not in rows  # stated (6), not tunable


def test_it_keeps_each_change_with_its_reason_and_computes_the_consensus_again(run, rated):
    Job.objects.filter(kind="consensus").update(status="succeeded")

    version = consensus_settings_update(
        by=rated.admin, study=rated.session.subject.study, values={"cortical_fraction_cortical": 0.8}, reason="protocol v2"
    )

    study = rated.session.subject.study
    assert (version.reason, version.by, version.values["cortical_fraction_cortical"]) == ("protocol v2", rated.admin, 0.8)
    assert study_params(study).cortical_fraction_cortical == 0.8 and study_params(study).cortical_fraction_wm == 0.25
    job = Job.objects.get(kind="consensus", status="queued")
    assert job.parameters["trigger"] == "the study's consensus settings changed"
    # The old run no longer counts as up to date; the next one records the new setting.
    assert up_to_date_run(rated.session, consensus_inputs(rated.session)) is None
    again = consensus_run(by=rated.admin, session=rated.session, trigger="test")
    assert again.params["cortical_fraction_cortical"] == 0.8
    assert up_to_date_run(rated.session, consensus_inputs(rated.session)) == again


def test_it_sets_the_studys_minimum_lesion_diameter_for_raters_and_consensus(study, admin):
    consensus_settings_update(by=admin, study=study, values={"min_lesion_diameter_mm": 3.0}, reason="3 mm rule")

    study.refresh_from_db()
    assert study.min_lesion_diameter_mm == 3.0 and study_params(study).min_lesion_diameter_mm == 3.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"colour": 1}, "unknown setting(s): colour"),
        ({"cortical_fraction_wm": 0.9}, "cortical_fraction_wm"),
        ({"majority": 0}, "majority"),
        ({"cortical_fraction_cortical": 0.75}, "nothing to change"),
    ],
)
def test_it_refuses_a_bad_change_and_keeps_the_settings(study, admin, values, message):
    with pytest.raises(ValidationFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        consensus_settings_update(by=admin, study=study, values=values, reason="try")
    assert not ConsensusSettings.objects.exists() and study_params(study) == ConsensusParams()


def test_it_needs_a_reason(study, admin):
    with pytest.raises(ValidationFailed, match="give a reason"):
        consensus_settings_update(by=admin, study=study, values={"reference_gap_vox": 1.0}, reason=" ")


@pytest.mark.parametrize("who, error", [("pi", Forbidden), ("rater", NotFound), ("outsider", NotFound)])
def test_it_lets_only_the_studys_admins_change_them(request, study, who, error):
    with pytest.raises(error):
        consensus_settings_update(by=request.getfixturevalue(who), study=study, values={"reference_gap_vox": 1.0}, reason="x")


def test_its_api_shows_admins_and_pis_and_lets_admins_change(study, admin, pi, rater):
    url = f"/api/v1/studies/{study.pk}/consensus-settings/"

    changed = client_for(admin).patch(url, {"values": {"reference_min_voxels": 30}, "reason": "bigger ROIs"}, format="json")

    assert changed.status_code == 200
    read = client_for(pi).get(url).json()
    assert {r["name"]: r["value"] for r in read["settings"]}["reference_min_voxels"] == 30
    assert read["history"][0]["reason"] == "bigger ROIs" and read["history"][0]["by"] == "admin"
    assert client_for(pi).patch(url, {"values": {"reference_min_voxels": 40}, "reason": "x"}, format="json").status_code == 403
    assert client_for(rater).get(url).status_code == 404
    bad = client_for(admin).patch(url, {"values": {"agreement_alpha": 2}, "reason": "x"}, format="json")
    assert bad.status_code == 400 and "agreement_alpha" in bad.json()["detail"]


def test_its_page_gives_admins_a_form_and_pis_the_values(study, admin, pi):
    url = f"/studies/{study.pk}/consensus/"
    form = page_client(admin).get(url).content.decode()
    assert 'name="cortical_fraction_cortical" value="0.75"' in form and 'data-testid="save-settings"' in form
    assert 'name="cortical_fraction_cortical"' not in page_client(pi).get(url).content.decode()

    posted = page_client(admin).post(url, {"cortical_fraction_cortical": "0.7", "majority": "", "reason": "pilot"}, follow=True)

    assert "Settings saved (cortical_fraction_cortical)" in posted.content.decode()
    assert study_params(study).cortical_fraction_cortical == 0.7 and study_params(study).majority is None
    refused = page_client(pi).post(url, {"cortical_fraction_cortical": "0.6", "reason": "x"}, follow=True)
    assert "only the study&#x27;s admins can change the consensus settings" in refused.content.decode()


def test_it_refuses_a_reason_postgresql_cannot_store(study, admin):
    with pytest.raises(ValidationFailed, match="NUL character"):
        consensus_settings_update(by=admin, study=study, values={"reference_gap_vox": 1.0}, reason="a\x00b")
    assert not ConsensusSettings.objects.exists()
