"""Bad input over the API (issue #15 points 7, 8 and 9): a 400 naming what is wrong, nothing stored.

Uploads whose header declares a huge volume are refused from the header; field strengths outside
0.1-20 T (or not finite) and control characters in names and labels are refused where they enter,
and a refused PATCH leaves the earlier value intact.
"""

from __future__ import annotations

import pytest

from qsmreview.studies.models import Series
from tests.api.world import client_for, db_fingerprint, upload_body, uploaded_file
from tests.fixtures.nifti import files_under
from tests.studies.declared import PHASE_512_1024, SLICE_23170, declaring

# --- uploads declaring a huge volume ---------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "extra", "message"),
    [
        (
            SLICE_23170,
            {"kind": "t2star_mag"},
            "volume too large: the header declares 23170 x 23170 x 1 float32 = 536,848,900 voxels "
            "(2.0 GiB unpacked), more than the limit of 134,217,728 voxels (QSMREVIEW_MAX_VOXELS)",
        ),
        (
            PHASE_512_1024,
            {"kind": "t2star_phase", "echo_times_s": "0.01"},
            "volume too large: the header declares 512 x 512 x 1024 int16 = 268,435,456 voxels "
            "(512.0 MiB unpacked), more than the limit of 134,217,728 voxels (QSMREVIEW_MAX_VOXELS)",
        ),
    ],
    ids=["23170-slice", "512x512x1024-phase"],
)
def test_it_refuses_an_upload_declaring_a_huge_volume_and_stores_nothing(
    admin, session, tmp_path, media_root, declared, extra, message
):
    path = declaring(tmp_path / "huge.nii.gz", *declared)
    body = upload_body(session, **extra)
    body["file"] = uploaded_file("huge.nii.gz", path.read_bytes())
    before = db_fingerprint()

    response = client_for(admin).post("/api/v1/series/", body, format="multipart")

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "field": "file"}
    assert db_fingerprint() == before
    assert not Series.objects.exists()
    assert files_under(media_root) == []
