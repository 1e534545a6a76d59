"""The field validators (issue #15 point 8) at every door other than the REST API.

The API is covered in ``tests/api/test_input_validation.py``; here: the validators themselves, the
services, the admin forms, the admin upload, the BIDS import and the ``import_bids`` command.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from qsmreview.access import system
from qsmreview.errors import ValidationFailed
from qsmreview.studies.bids import import_bids
from qsmreview.studies.models import Series, Session, Study, Subject
from qsmreview.studies.services.series import series_create_from_file
from qsmreview.studies.services.studies import session_update, study_create, study_update, subject_create
from qsmreview.studies.validators import (
    validate_field_strength_t,
    validate_multi_line,
    validate_single_line,
    validate_years,
)
from tests.fixtures.cast import PASSWORD
from tests.fixtures.nifti import files_under, magnitude_data, write_nifti

# --- the validators --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.1, 1.5, 3, 7.0, 9.4, 11.7, 20])
def test_it_accepts_field_strengths_of_real_scanners(value):
    validate_field_strength_t(value)


@pytest.mark.parametrize(
    "value", [0, 0.0999, 20.001, -7, 1e308, float("inf"), float("-inf"), float("nan"), "NaN", "7T", None]
)
def test_it_refuses_field_strengths_outside_0_1_to_20_tesla(value):
    with pytest.raises(ValidationError, match=r"must be a field strength in tesla \(0.1-20 T\)"):
        validate_field_strength_t(value)


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"])
def test_it_refuses_every_control_character_in_a_single_line(char):
    with pytest.raises(ValidationError, match="without control characters; found U\\+"):
        validate_single_line(f"sub{char}01")


@pytest.mark.parametrize("text", ["", "P01", "ses-01", "Étude – µQSM 7T", "日本語", "a b"])
def test_it_accepts_ordinary_text_in_a_single_line(text):
    validate_single_line(text)


def test_it_allows_line_breaks_and_tabs_in_free_text_but_no_other_control_character():
    validate_multi_line("first line\r\n\tsecond line\n")
    with pytest.raises(ValidationError) as info:
        validate_multi_line("red: \x1b[31m")
    assert info.value.messages == [
        r"must not contain control characters other than line breaks and tabs; found U+001B (\x1b) at position 5"
    ]


def test_it_refuses_ages_that_are_not_a_lifetime():
    validate_years(0)
    validate_years(130)
    for value in (-0.5, 131, 1e308, float("nan")):
        with pytest.raises(ValidationError, match="years within 0-130"):
            validate_years(value)


# --- the services ----------------------------------------------------------------------------


def test_the_services_refuse_out_of_range_b0_and_control_characters(superuser, study, admin, subject, session):
    with pytest.raises(ValidationFailed, match=r"field_strength_t: must be a field strength in tesla") as info:
        study_create(by=superuser, name="New", field_strength_t=1e308)
    assert info.value.field == "field_strength_t"
    with pytest.raises(ValidationFailed, match="name: must be a single line") as info:
        study_update(study=study, by=admin, name="MS\n7T")
    assert info.value.field == "name"
    with pytest.raises(ValidationFailed, match="code: must be a single line"):
        subject_create(study=study, by=admin, code="P\x1b02")
    with pytest.raises(ValidationFailed, match=r"field_strength_t: .* got nan"):
        session_update(session=session, by=admin, field_strength_t=float("nan"))

    assert not Study.objects.filter(name="New").exists()
    assert not Subject.objects.filter(code="P\x1b02").exists()
    for obj, field, value in ((study, "name", "MS 7T QSM"), (session, "field_strength_t", 7.0)):
        obj.refresh_from_db()
        assert getattr(obj, field) == value


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"b0_t": 1e308}, "b0_t", "B0: must be a field strength in tesla (0.1-20 T), got 1e+308"),
        ({"b0_t": float("inf")}, "b0_t", "B0: must be a field strength in tesla (0.1-20 T), got inf"),
        ({"label": "echo\t2"}, "label", r"label: must be a single line of text without control characters; found U+0009 (\t) at position 4"),
        ({"original_filename": "mag\n.nii.gz"}, "file", r"file name: must be a single line of text without control characters; found U+000A (\n) at position 3"),
    ],
    ids=["b0-huge", "b0-inf", "label-tab", "filename-newline"],
)
def test_the_upload_service_refuses_bad_b0_and_names_before_storing(session, nifti, media_root, kwargs, field, message):
    path = nifti.magnitude()
    args = {
        "session": session, "kind": "t2star_mag", "path": path, "original_filename": "mag.nii.gz",
        "by": system("tests"), **kwargs,
    }

    with pytest.raises(ValidationFailed) as info:
        series_create_from_file(**args)

    assert (info.value.message, info.value.field) == (message, field)
    assert not Series.objects.exists()
    assert files_under(media_root) == []


# --- the admin -------------------------------------------------------------------------------


def _admin_client(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def test_the_admin_forms_refuse_out_of_range_b0_and_control_characters(superuser, study, session):
    client = _admin_client(superuser)

    study_page = client.post(
        f"/admin/studies/study/{study.pk}/change/",
        {"name": study.name, "description": "", "field_strength_t": "1e308", "protocol": "{}",
         "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"},
    )
    session_page = client.post(
        f"/admin/studies/session/{session.pk}/change/",
        {"subject": session.subject.pk, "label": "0\n1", "scan_date": "", "scanner": "7T", "field_strength_t": "7"},
    )

    assert study_page.status_code == 200  # the form again, with its errors
    assert "must be a field strength in tesla (0.1-20 T), got 1e+308" in study_page.content.decode()
    assert session_page.status_code == 200
    assert "must be a single line of text without control characters" in session_page.content.decode()
    study.refresh_from_db()
    session.refresh_from_db()
    assert (study.field_strength_t, session.label) == (7.0, "01")


# --- the BIDS import and its command ---------------------------------------------------------


def _bids(root: Path, *, field_strength, code: str = "01") -> Path:
    anat = root / f"sub-{code}" / "anat"
    write_nifti(anat / f"sub-{code}_part-mag_T2starw.nii.gz", magnitude_data())
    (root / "T2starw.json").write_text(json.dumps({"MagneticFieldStrength": field_strength}))
    return root


@pytest.mark.parametrize(("value", "shown"), [(7000, "got 7000"), (1e308, "got 1e+308"), (0, "got 0")])
def test_the_bids_import_refuses_a_magnetic_field_strength_out_of_range(study, tmp_path, media_root, value, shown):
    root = _bids(tmp_path / "ds", field_strength=value)

    report = import_bids(root, study=study, by=system("tests"))

    assert report.imported == []
    [skipped] = report.skipped
    assert skipped.category == "invalid"
    assert skipped.reason == (
        f"sub-01 ses-01: MagneticFieldStrength: must be a field strength in tesla (0.1-20 T), {shown}"
    )
    assert not Session.objects.filter(subject__study=study).exists()
    assert files_under(media_root) == []


def test_the_bids_import_refuses_a_subject_code_with_a_control_character(study, tmp_path, media_root):
    root = _bids(tmp_path / "ds", field_strength=7, code="0\x1b1")

    report = import_bids(root, study=study, by=system("tests"))

    assert report.imported == [] and report.subjects_created == []
    assert {s.category for s in report.skipped} == {"invalid"}
    assert "subject '0\\x1b1': code: must be a single line" in report.skipped[0].reason
    assert not Subject.objects.filter(study=study).exists()


def test_the_import_command_refuses_a_study_name_with_a_control_character(db, tmp_path, media_root, outsider):
    root = _bids(tmp_path / "ds", field_strength=7)

    with pytest.raises(CommandError, match="--study name: must be a single line"):
        call_command(
            "import_bids", str(root), "--study", "MS\x007T", "--create-study", "--admin", outsider.username,
            "--no-progress", stdout=io.StringIO(),
        )

    assert not Study.objects.exists()
