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


# --- physical fields: B0 within 0.1-20 T, finite ---------------------------------------------

B0_OUT_OF_RANGE = [
    (1e308, "got 1e+308"),
    (20.5, "got 20.5"),
    (0.05, "got 0.05"),
    (-7, "got -7"),
]
NOT_A_NUMBER = ["NaN", "Infinity", "-inf", "1e309"]


def _refused(response, field: str, contains: str = "") -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}: ")
    assert contains in body["detail"]


@pytest.mark.parametrize(("value", "shown"), B0_OUT_OF_RANGE)
def test_it_refuses_a_study_field_strength_out_of_range(staff, study, admin, value, shown):
    before = db_fingerprint()

    created = client_for(staff).post("/api/v1/studies/", {"name": "New", "field_strength_t": value}, format="json")
    patched = client_for(admin).patch(f"/api/v1/studies/{study.pk}/", {"field_strength_t": value}, format="json")

    _refused(created, "field_strength_t", f"must be a field strength in tesla (0.1-20 T), {shown}")
    _refused(patched, "field_strength_t", f"must be a field strength in tesla (0.1-20 T), {shown}")
    assert db_fingerprint() == before
    study.refresh_from_db()
    assert study.field_strength_t == 7.0


@pytest.mark.parametrize(("value", "shown"), B0_OUT_OF_RANGE)
def test_it_refuses_a_session_field_strength_out_of_range(admin, subject, session, value, shown):
    before = db_fingerprint()
    client = client_for(admin)

    created = client.post("/api/v1/sessions/", {"subject": subject.pk, "label": "02", "field_strength_t": value}, format="json")
    patched = client.patch(f"/api/v1/sessions/{session.pk}/", {"field_strength_t": value}, format="json")

    _refused(created, "field_strength_t", shown)
    _refused(patched, "field_strength_t", shown)
    assert db_fingerprint() == before
    session.refresh_from_db()
    assert session.field_strength_t == 7.0


@pytest.mark.parametrize("value", NOT_A_NUMBER)
def test_it_refuses_nan_and_infinity_sent_as_strings(admin, study, session, value):
    before = db_fingerprint()
    client = client_for(admin)

    responses = [
        client.patch(f"/api/v1/studies/{study.pk}/", {"field_strength_t": value}, format="json"),
        client.patch(f"/api/v1/sessions/{session.pk}/", {"field_strength_t": value}, format="json"),
        client.patch(f"/api/v1/subjects/{session.subject.pk}/", {"age_years": value}, format="json"),
    ]

    for response, field in zip(responses, ["field_strength_t", "field_strength_t", "age_years"]):
        _refused(response, field)
    assert db_fingerprint() == before


def test_it_refuses_a_bare_nan_in_json(admin, study):
    response = client_for(admin).patch(
        f"/api/v1/studies/{study.pk}/", b'{"field_strength_t": NaN}', content_type="application/json"
    )

    assert response.status_code == 400
    study.refresh_from_db()
    assert study.field_strength_t == 7.0


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("age_years", 1e308, "years within 0-130, got 1e+308"),
        ("age_years", -1, "got -1"),
        ("disease_duration_years", 200, "got 200"),
        ("min_wm_lesion_age_months", 1e12, "months within 0-1560, got 1000000000000.0"),
    ],
)
def test_it_refuses_implausible_ages_and_durations(admin, subject, field, value, shown):
    before = db_fingerprint()

    response = client_for(admin).patch(f"/api/v1/subjects/{subject.pk}/", {field: value}, format="json")

    _refused(response, field, shown)
    assert db_fingerprint() == before


@pytest.mark.parametrize(("value", "shown"), [(1e308, "got 1e+308"), ("NaN", ""), (25, "got 25")])
def test_it_refuses_an_upload_with_b0_out_of_range_and_stores_nothing(admin, session, media_root, value, shown):
    before = db_fingerprint()

    response = client_for(admin).post("/api/v1/series/", upload_body(session, b0_t=value), format="multipart")

    _refused(response, "b0_t", shown)
    assert db_fingerprint() == before
    assert files_under(media_root) == []


# --- control characters in names, codes and labels -------------------------------------------

CONTROL = [
    ("\x00", r"U+0000 (\x00)"),
    ("\n", r"U+000A (\n)"),
    ("\t", r"U+0009 (\t)"),
    ("\x1b", r"U+001B (\x1b)"),
    ("\x7f", r"U+007F (\x7f)"),
    ("\x85", r"U+0085 (\x85)"),
    ("\u2028", "U+2028 (LINE SEPARATOR)"),
]
SINGLE_LINE = "must be a single line of text without control characters; found "


def _doors(study, subject, session):
    """(what, method, url, body builder, field); a refused PATCH must leave the row intact."""
    return [
        ("study name", "post", "/api/v1/studies/", lambda v: {"name": v}, "name"),
        ("study name", "patch", f"/api/v1/studies/{study.pk}/", lambda v: {"name": v}, "name"),
        ("subject code", "post", "/api/v1/subjects/", lambda v: {"study": study.pk, "code": v}, "code"),
        ("subject code", "patch", f"/api/v1/subjects/{subject.pk}/", lambda v: {"code": v}, "code"),
        ("treatment", "patch", f"/api/v1/subjects/{subject.pk}/", lambda v: {"treatment": v}, "treatment"),
        ("session label", "post", "/api/v1/sessions/", lambda v: {"subject": subject.pk, "label": v}, "label"),
        ("session label", "patch", f"/api/v1/sessions/{session.pk}/", lambda v: {"label": v}, "label"),
        ("scanner", "patch", f"/api/v1/sessions/{session.pk}/", lambda v: {"scanner": v}, "scanner"),
    ]


@pytest.mark.parametrize(("char", "shown"), CONTROL, ids=[repr(c) for c, _ in CONTROL])
def test_it_refuses_control_characters_in_every_name_code_and_label(
    superuser, study, admin, subject, session, char, shown
):
    before = db_fingerprint()
    client = client_for(superuser)

    for what, method, url, body, field in _doors(study, subject, session):
        value = f"P{char}01"
        response = getattr(client, method)(url, body(value), format="json")

        assert response.status_code == 400, (what, method, response.content)
        assert response.json()["field"] == field, what
        ours = f"{field}: {SINGLE_LINE}{shown} at position 1"
        # Where DRF's CharField checks NUL first, it says so in its own words.
        # NUL is refused by the JSON parser before any field (no database column stores it).
        nul = {f"{field}: Null characters are not allowed.", f"{field}: text may not contain the NUL character (\\u0000)"}
        allowed = {ours, *nul} if char == "\x00" else {ours}
        assert response.json()["detail"] in allowed, what
    assert db_fingerprint() == before


@pytest.mark.parametrize(("char", "shown"), CONTROL[:1] + CONTROL[3:5], ids=["nul", "esc", "del"])
def test_it_refuses_control_characters_in_free_text_but_keeps_line_breaks(admin, study, subject, char, shown):
    client = client_for(admin)
    before = db_fingerprint()

    refused = [
        client.patch(f"/api/v1/studies/{study.pk}/", {"description": f"a{char}b"}, format="json"),
        client.patch(f"/api/v1/subjects/{subject.pk}/", {"notes": f"a{char}b"}, format="json"),
    ]
    # NUL never reaches the field validators: the JSON parser refuses it (no column stores it).
    expected = "NUL character" if char == "\x00" else f"found {shown} at position 1"
    for response, field in zip(refused, ["description", "notes"]):
        _refused(response, field, expected)
    assert db_fingerprint() == before

    kept = client.patch(f"/api/v1/subjects/{subject.pk}/", {"notes": "line 1\r\n\tline 2"}, format="json")
    assert kept.status_code == 200
    subject.refresh_from_db()
    assert subject.notes == "line 1\r\n\tline 2"


def test_it_refuses_a_series_label_with_a_control_character_and_stores_nothing(admin, session, media_root):
    before = db_fingerprint()

    response = client_for(admin).post(
        "/api/v1/series/", upload_body(session, label="echo\x002"), format="multipart"
    )

    _refused(response, "label", r"found U+0000 (\x00) at position 4")
    assert db_fingerprint() == before
    assert files_under(media_root) == []


def test_it_accepts_ordinary_unicode_names(admin, study):
    response = client_for(admin).patch(f"/api/v1/studies/{study.pk}/", {"name": "Étude 7T – Zürich µQSM"}, format="json")

    assert response.status_code == 200
