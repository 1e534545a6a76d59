"""The upload page in Chromium: an admin uploads two NIfTI files to a new subject's new session (one
accepted, one refused with the server's message, each with its progress bar), then imports a BIDS
dataset as a zip."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from qsmreview.studies.models import Series, Session, Subject

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_uploads_files_and_sees_each_verdict(
    media_root, logged_in_page, live_server, admin, study, nifti, tmp_path, screens_dir
) -> None:
    mag = nifti.magnitude("sub-P07_ses-01_part-mag_T2starw.nii.gz")
    sidecar = tmp_path / "nifti" / "sub-P07_ses-01_part-mag_T2starw.json"
    sidecar.write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
    phase = nifti.phase("sub-P07_ses-01_part-phase_T2starw.nii.gz")  # no sidecar: no echo time

    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    page.click('[data-testid="upload-link"]')
    page.wait_for_selector('[data-testid="upload"][data-ready="true"]')
    assert page.locator('[data-testid="subject"]').input_value() == "new"
    page.fill('[data-testid="subject-code"]', "P07")
    page.fill('[data-testid="session-label"]', "01")
    page.set_input_files('[data-testid="files"]', [str(mag), str(sidecar), str(phase)])

    mag_row = page.locator(f'tr[data-file="{mag.name}"]')
    phase_row = page.locator(f'tr[data-file="{phase.name}"]')
    assert mag_row.locator("select[name=kind]").input_value() == "t2star_mag"
    assert mag_row.locator("input[name=echo_times_s]").input_value() == "0.0177"
    assert phase_row.locator("select[name=kind]").input_value() == "t2star_phase"
    assert phase_row.locator("input[name=echo_times_s]").input_value() == ""

    page.click('[data-testid="upload-all"]')
    page.wait_for_selector('[data-testid="upload"][data-done]', timeout=30_000)
    assert mag_row.get_attribute("data-state") == "accepted"
    assert mag_row.locator("progress").get_attribute("value") == "100"
    assert phase_row.get_attribute("data-state") == "refused"
    assert "a phase series needs its echo time(s) in seconds" in phase_row.locator(".result").inner_text()
    assert page.locator('[data-testid="upload-summary"]').inner_text() == "1 accepted, 1 refused."
    page.screenshot(path=str(screens_dir / "upload_files.png"), full_page=True)

    session = Session.objects.get(subject__study=study, subject__code="P07", label="01")
    stored = Series.objects.get(session=session)
    assert (stored.kind, stored.echo_times_s, stored.b0_t, stored.uploaded_by) == ("t2star_mag", [0.0177], 7.0, admin)


def bids_zip(nifti, tmp_path) -> bytes:
    mag = nifti.magnitude("mag.nii.gz")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ds/participants.tsv", "participant_id\tsex\tage\tgroup\nsub-P09\tF\t38\tRRMS\n")
        base = "ds/sub-P09/ses-02/anat/sub-P09_ses-02"
        zf.write(mag, f"{base}_part-mag_T2starw.nii.gz")
        zf.writestr(f"{base}_part-mag_T2starw.json", json.dumps({"EchoTime": 0.02}))
        zf.write(mag, f"{base}_dwi.nii.gz")  # not imported: reported as unrecognised
    path = tmp_path / "ds.zip"
    path.write_bytes(buf.getvalue())
    return path


def test_an_admin_imports_a_bids_zip(
    media_root, logged_in_page, live_server, admin, study, nifti, tmp_path, screens_dir
) -> None:
    path = bids_zip(nifti, tmp_path)
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/upload/")
    page.set_input_files('[data-testid="bids-file"]', str(path))
    page.click('[data-testid="bids-import"]')
    page.wait_for_selector('[data-testid="upload"][data-bids]', timeout=30_000)
    assert page.locator('[data-testid="upload"]').get_attribute("data-bids") == "done"
    assert "imported 1 series; skipped 1" in page.locator('[data-testid="bids-status"]').inner_text()
    report = page.locator('[data-testid="bids-report"] tbody tr')
    assert report.count() == 2
    assert "sub-P09 ses-02 t2star_mag" in report.nth(0).inner_text()
    assert "suffix 'dwi' is not imported" in report.nth(1).inner_text()
    page.screenshot(path=str(screens_dir / "upload_bids.png"), full_page=True)

    subject = Subject.objects.get(study=study, code="P09")
    assert (subject.sex, subject.age_years, subject.phenotype) == ("F", 38.0, "RRMS")
    assert Series.objects.get(session__subject=subject).uploaded_by == admin


def test_per_echo_files_get_echo_labels_and_a_warning(
    media_root, logged_in_page, live_server, admin, study, session, nifti
) -> None:
    echoes = [nifti.magnitude(f"sub-P01_ses-01_echo-{n}_part-mag_MEGRE.nii.gz") for n in (1, 2)]
    page = logged_in_page(admin)
    page.goto(f"{live_server.url}/studies/{study.pk}/upload/")
    assert page.locator('[data-testid="session"]').input_value() == str(session.pk)
    page.set_input_files('[data-testid="files"]', [str(p) for p in echoes])
    labels = page.locator("tr[data-file] input[name=label]").evaluate_all("els => els.map(e => e.value)")
    assert labels == ["echo-1", "echo-2"]
    warning = page.locator('[data-testid="echo-warning"]')
    assert warning.is_visible() and "Send per-echo files as a BIDS zip" in warning.inner_text()
    page.select_option(f'tr[data-file="{echoes[1].name}"] select[name=kind]', "other")
    assert not warning.is_visible()
