"""``POST /api/v1/studies/<id>/bids-import/``: a BIDS zip through the ``import_bids`` code, and every
unsafe zip refused with a message and nothing stored."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import numpy as np
import pytest
from rest_framework.test import APIClient

from qsmreview.studies.api import bids_upload
from qsmreview.studies.models import Series, Subject
from tests.api.world import client_for, db_fingerprint, nifti_bytes
from tests.fixtures.nifti import files_under

ANAT = "sub-P09/ses-02/anat/sub-P09_ses-02"


def make_zip(members: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def dataset(prefix: str = "") -> dict[str, bytes | str]:
    return {
        f"{prefix}participants.tsv": "participant_id\tsex\nsub-P09\tM\n",
        f"{prefix}{ANAT}_part-mag_T2starw.nii.gz": nifti_bytes(seed=5),
        f"{prefix}{ANAT}_part-mag_T2starw.json": json.dumps({"EchoTime": 0.02, "MagneticFieldStrength": 7}),
        f"{prefix}{ANAT}_part-phase_T2starw.nii.gz": nifti_bytes(seed=6),  # no EchoTime: skipped
    }


def post(client: APIClient, study, body: bytes, query: str = "", content_type: str = "application/zip"):
    return client.post(
        f"/api/v1/studies/{study.pk}/bids-import/?filename=ds.zip{query}", data=body, content_type=content_type
    )


def test_it_imports_a_dataset_like_the_command(admin, study, media_root) -> None:
    response = post(client_for(admin), study, make_zip(dataset("ds/")))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"] == "imported 1 series; skipped 1; new subjects 1, new sessions 1"
    assert body["imported"][0]["path"] == f"{ANAT}_part-mag_T2starw.nii.gz"
    assert body["skipped"] == [{
        "path": f"{ANAT}_part-phase_T2starw.nii.gz", "category": "missing metadata",
        "reason": "phase without EchoTime in its JSON sidecar",
    }]
    series = Series.objects.get(pk=body["imported"][0]["series"])
    assert (series.session.subject.code, series.session.label, series.kind) == ("P09", "02", "t2star_mag")
    assert (series.echo_times_s, series.b0_t, series.uploaded_by) == ([0.02], 7.0, admin)
    assert series.provenance["bids"]["dataset"] == "ds"
    assert Subject.objects.get(code="P09").sex == "M"

    again = post(client_for(admin), study, make_zip(dataset("ds/"))).json()
    assert again["imported"] == []
    assert {k["category"] for k in again["skipped"]} == {"already imported", "missing metadata"}


def test_a_dry_run_stores_nothing(admin, study, media_root) -> None:
    before = db_fingerprint()
    body = post(client_for(admin), study, make_zip(dataset()), "&dry_run=1").json()
    assert body["dry_run"] is True and body["summary"].startswith("would import 1 series")
    assert db_fingerprint() == before and files_under(media_root) == []


def symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(f"{ANAT}_part-mag_T2starw.nii.gz")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    "body, message",
    [
        (make_zip({"../evil.nii.gz": b"x", **dataset()}), "unsafe path in the zip: '../evil.nii.gz'"),
        (make_zip({"/abs/evil.nii.gz": b"x"}), "unsafe path in the zip: '/abs/evil.nii.gz'"),
        (make_zip({"sub-P09\\..\\evil.nii": b"x"}), "unsafe path in the zip"),
        (symlink_zip(), "the zip holds a symbolic link"),
        (make_zip({"sub-P09/big.nii": bytes(8 * 1024 * 1024)}), "refused as a possible zip bomb"),
        (b"PK\x03\x04 not really a zip", "not a zip file"),
        (make_zip({"README": "no subjects here"}), "no sub-* folder at the top of the zip"),
        (make_zip({"sub-P09": b"x", "sub-P09/anat/a.nii": b"y"}), "the zip cannot be unpacked"),
    ],
    ids=["dotdot", "absolute", "backslash", "symlink", "bomb", "not-a-zip", "not-bids", "file-and-folder"],
)
def test_it_refuses_an_unsafe_zip_and_stores_nothing(admin, study, media_root, body, message) -> None:
    before = db_fingerprint()
    response = post(client_for(admin), study, body)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert response.json()["code"] == "invalid"
    assert db_fingerprint() == before and files_under(media_root) == []


def test_it_refuses_a_zip_that_unpacks_beyond_the_limit(admin, study, media_root, monkeypatch, settings) -> None:
    monkeypatch.setattr(bids_upload, "MAX_UNPACKED_FACTOR", 1)
    rng = np.random.default_rng(0)
    two_bits = rng.integers(0, 4, size=300_000, dtype=np.uint8).tobytes()  # packs ~3:1, no bomb
    body = make_zip({f"sub-P09/f{i}.nii": two_bits for i in range(3)})
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = len(body) + 1  # the zip itself is accepted
    response = post(client_for(admin), study, body)
    assert response.status_code == 400
    assert "unpacks to 878.9 KiB, more than the limit of" in response.json()["detail"]


def test_it_refuses_too_many_members(admin, study, media_root, monkeypatch) -> None:
    monkeypatch.setattr(bids_upload, "MAX_MEMBERS", 3)
    response = post(client_for(admin), study, make_zip(dataset()))
    assert response.status_code == 400
    assert response.json()["detail"] == "the zip has 4 members; at most 3 are accepted"


def test_it_refuses_a_body_over_the_upload_limit_with_413(admin, study, media_root, settings) -> None:
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 1000
    response = post(client_for(admin), study, make_zip(dataset()))
    assert response.status_code == 413
    assert "is larger than the upload limit" in response.json()["detail"]


def test_it_checks_rights_before_reading_the_body(rater, outsider, study, media_root, settings) -> None:
    settings.QSMREVIEW_MAX_UPLOAD_BYTES = 10  # any body would be too large
    assert post(client_for(rater), study, make_zip(dataset())).status_code == 403
    assert post(client_for(outsider), study, make_zip(dataset())).status_code == 404
    assert post(APIClient(), study, make_zip(dataset())).status_code == 401


def test_a_browser_session_needs_the_csrf_token(admin, study, media_root) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin)
    response = post(client, study, make_zip(dataset()))
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Subject.objects.filter(code="P09").exists()


def test_it_wants_the_zip_itself_not_a_form(admin, study, media_root) -> None:
    response = client_for(admin).post(f"/api/v1/studies/{study.pk}/bids-import/", {"file": "x"}, format="multipart")
    assert response.status_code == 415
    assert "send the zip file itself as the body" in response.json()["detail"]
