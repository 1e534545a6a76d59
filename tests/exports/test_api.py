"""The export's API route and the study page's button: who gets the zip, what it holds, what a
rater sees (nothing: no button, 404, the same body as a study that does not exist)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.test import Client

from tests.api.world import as_bytes, client_for
from tests.exports.conftest import Exportable, qsm_values
from tests.exports.readback import read_back

URL = "/api/v1/studies/{}/export/bids.zip"
PAGE = "/studies/{}/export/bids.zip"


def unzip(body: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
        assert tops == {"ms-7t-qsm-bids"}
        zf.extractall(into)
    return into / "ms-7t-qsm-bids"


@pytest.mark.parametrize("who", ["admin", "pi"])
def test_it_streams_the_dataset_as_a_zip(exportable: Exportable, who: str, request, tmp_path: Path):
    response = client_for(request.getfixturevalue(who)).get(URL.format(exportable.study.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="ms-7t-qsm-bids.zip"'
    assert response["Cache-Control"] == "private, no-store"
    ds = read_back(unzip(as_bytes(response), tmp_path / "unzipped"))
    assert np.array_equal(np.asanyarray(ds.image("P01", "01", "Chimap").dataobj), qsm_values(1))
    assert len(ds.lesions) == 3


def test_it_leaves_no_temporary_file_behind(exportable: Exportable, admin, settings, tmp_path: Path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()

    response = client_for(admin).get(URL.format(exportable.study.pk))

    assert response.status_code == 200 and as_bytes(response)[:2] == b"PK"
    assert list((tmp_path / "uploads").iterdir()) == []


@pytest.mark.parametrize("who", ["rater", "outsider", "other_admin"])
def test_it_answers_404_like_a_missing_study(exportable: Exportable, who: str, request):
    client = client_for(request.getfixturevalue(who))

    hidden = client.get(URL.format(exportable.study.pk))
    missing = client.get(URL.format(exportable.study.pk + 1000))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"detail": "no such study", "code": "not_found"}


def test_it_answers_json_errors_to_a_client_asking_for_a_zip(exportable: Exportable, rater):
    response = client_for(rater).get(URL.format(exportable.study.pk), HTTP_ACCEPT="application/zip")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_it_answers_410_when_a_stored_file_is_gone(exportable: Exportable, admin):
    exportable.qsm.file.storage.delete(exportable.qsm.file.name)

    response = client_for(admin).get(URL.format(exportable.study.pk))

    assert response.status_code == 410
    assert response.json() == {"detail": f"the file of series {exportable.qsm.pk} is missing from storage", "code": "gone"}


def test_it_is_described_in_the_schema(db, admin):
    schema = client_for(admin).get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/studies/{id}/export/bids.zip"]["get"]
    assert operation["summary"].startswith("Download the study as a BIDS derivatives dataset")
    assert "_Chimap.nii.gz" in operation["description"]
    assert "application/zip" in operation["responses"]["200"]["content"]
    assert {"401", "404", "410"} <= set(operation["responses"])


@pytest.mark.parametrize("who, shown", [("admin", True), ("pi", True), ("rater", False)])
def test_it_shows_the_button_to_admins_and_pi_only(exportable: Exportable, who: str, shown: bool, request, assignment):
    client = Client()
    client.force_login(request.getfixturevalue(who))

    page = client.get(f"/studies/{exportable.study.pk}/").content.decode()

    assert ('data-testid="export-link"' in page) is shown
    assert (f"/studies/{exportable.study.pk}/exports/" in page) is shown


def test_it_downloads_from_the_button(exportable: Exportable, pi, tmp_path: Path):
    client = Client()
    client.force_login(pi)

    response = client.get(PAGE.format(exportable.study.pk))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="ms-7t-qsm-bids.zip"'
    read_back(unzip(as_bytes(response), tmp_path / "unzipped"))


def test_it_says_on_the_study_page_when_a_file_is_gone(exportable: Exportable, admin):
    exportable.qsm.file.storage.delete(exportable.qsm.file.name)
    client = Client()
    client.force_login(admin)

    response = client.get(PAGE.format(exportable.study.pk), follow=True)

    assert response.redirect_chain == [(f"/studies/{exportable.study.pk}/", 302)]
    assert "The export failed: the file of series" in response.content.decode()
