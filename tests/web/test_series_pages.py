"""The series viewer page, the upload page, and how the study and processing pages label series."""

from __future__ import annotations

import json

import pytest

from qsmreview.jobs.models import Job, JobStatus
from qsmreview.studies.models import Series
from tests.fixtures.cast import page_client as client_for
from tests.web.test_pages import make_series


def page_config(html: str, element_id: str) -> dict:
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(f'<script id="{element_id}" type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def coregistered(session, admin) -> dict[str, Series]:
    """A session after coregistration: the FLAIR upload on its own grid and the job's output."""
    job = Job.objects.create(kind="coregister", status=JobStatus.SUCCEEDED, study=session.subject.study, session=session)
    native = make_series(session, "flair", blinded=False)
    Series.objects.filter(pk=native.pk).update(space="native")
    on_grid = make_series(session, "flair", blinded=False)
    Series.objects.filter(pk=on_grid.pk).update(derived_by=job)
    return {
        "magnitude": make_series(session, "t2star_mag", blinded=False),
        "flair_native": Series.objects.get(pk=native.pk),
        "flair_coreg": Series.objects.get(pk=on_grid.pk),
        "qsm": make_series(session, "qsm", blinded=True),
    }


# --- the study page -----------------------------------------------------------------------------


def test_it_tells_the_two_current_flairs_apart(admin, study, coregistered) -> None:
    html = client_for(admin).get(f"/studies/{study.pk}/").content.decode()
    def row(series: Series) -> str:
        start = html.index(f'data-series="{series.pk}"')
        return html[start : html.index("</tr>", start)]

    assert '<td data-testid="version">v1 · own grid (native)</td>' in row(coregistered["flair_native"])
    assert '<td data-testid="version">v1 · on T2* grid (coregistered)</td>' in row(coregistered["flair_coreg"])
    assert '<td data-testid="version">v1</td>' in row(coregistered["magnitude"])


def test_every_series_row_links_to_its_viewer_and_download(admin, study, coregistered) -> None:
    html = client_for(admin).get(f"/studies/{study.pk}/").content.decode()
    for series in coregistered.values():
        assert f'href="/series/{series.pk}/view/"' in html
        assert f'href="/api/v1/series/{series.pk}/volume/" download' in html
    assert f'href="/studies/{study.pk}/upload/"' in html


@pytest.mark.parametrize("who", ["rater", "pi"])
def test_only_admins_see_the_upload_link(who, request, study, coregistered) -> None:
    html = client_for(request.getfixturevalue(who)).get(f"/studies/{study.pk}/").content.decode()
    assert "/upload/" not in html


def test_a_rater_gets_no_link_to_a_qsm(rater, assignment, study, coregistered) -> None:
    html = client_for(rater).get(f"/studies/{study.pk}/").content.decode()
    assert f'/series/{coregistered["qsm"].pk}/' not in html
    assert f'href="/series/{coregistered["magnitude"].pk}/view/"' in html


# --- the viewer page ----------------------------------------------------------------------------


def test_the_viewer_loads_qsm_in_ppm_through_the_volume_api(admin, coregistered) -> None:
    qsm = coregistered["qsm"]
    html = client_for(admin).get(f"/series/{qsm.pk}/view/").content.decode()
    config = page_config(html, "viewer-config")
    assert config["series"]["url"] == f"/api/v1/series/{qsm.pk}/volume/"
    assert config["series"]["name"].endswith(".nii.gz")  # NiiVue reads the format from the name
    assert config["series"]["units"] == "ppm" and config["series"]["kind"] == "qsm"
    assert "vendor/niivue/index.js" in html and "qsmreview/series_view.js" in html
    assert 'data-ready="false"' in html


def test_the_overlay_list_holds_only_series_the_user_may_see(rater, assignment, admin, coregistered) -> None:
    mag = coregistered["magnitude"]
    for user, expect_qsm in ((rater, False), (admin, True)):
        config = page_config(client_for(user).get(f"/series/{mag.pk}/view/").content.decode(), "viewer-config")
        ids = {o["id"] for o in config["overlays"]}
        assert mag.pk not in ids
        assert coregistered["flair_native"].pk in ids and coregistered["flair_coreg"].pk in ids
        assert (coregistered["qsm"].pk in ids) is expect_qsm
    titles = [o["title"] for o in config["overlays"]]
    assert "T2 FLAIR v1 · own grid (native)" in titles


def test_the_overlay_list_never_reaches_another_session(superuser, coregistered, other_session) -> None:
    other = make_series(other_session, "flair", blinded=False)
    config = page_config(
        client_for(superuser).get(f"/series/{coregistered['magnitude'].pk}/view/").content.decode(), "viewer-config"
    )
    assert other.pk not in {o["id"] for o in config["overlays"]}


# --- the upload page ----------------------------------------------------------------------------


def test_the_upload_page_lists_the_studys_subjects_and_sessions(admin, study, session, other_session) -> None:
    html = client_for(admin).get(f"/studies/{study.pk}/upload/").content.decode()
    config = page_config(html, "upload-config")
    assert config["subjects"] == [{"id": session.subject_id, "code": "P01"}]
    assert config["sessions"] == [{"id": session.pk, "subject": session.subject_id, "label": "01"}]
    assert config["urls"]["bids"] == f"/api/v1/studies/{study.pk}/bids-import/"
    assert {"value": "t2star_phase", "label": "T2*-weighted phase"} in config["kinds"]
    assert "csrfmiddlewaretoken" in html


# --- the processing page ------------------------------------------------------------------------


def test_the_processing_page_labels_versions_and_shows_a_failed_jobs_error(admin, study, session, coregistered) -> None:
    Job.objects.create(
        kind="qsm", status=JobStatus.FAILED, study=study, session=session, progress=30,
        error="ValidationFailed: a phase series needs its echo time(s)",
    )
    html = client_for(admin).get(f"/studies/{study.pk}/processing/").content.decode()
    assert "v1 · own grid (native)" in html and "v1 · on T2* grid (coregistered)" in html
    assert '<div class="job-error" data-testid="job-error">' in html
    assert "ValidationFailed: a phase series needs its echo time(s)" in html
    assert "<details" not in html
