"""Every write service checks its acting user itself (not only the views in front of it).

A refused write stores nothing: no row, no file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qsmreview.access import system
from qsmreview.errors import Forbidden, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.jobs.services import job_submit
from qsmreview.processing.services import processing_submit
from qsmreview.studies.models import Membership, Series
from qsmreview.studies.services.series import series_create_derived, series_create_from_file, series_set_current
from qsmreview.studies.services.studies import study_create

pytestmark = pytest.mark.django_db

NOT_ADMINS = ["rater", "pi", "outsider", "other_admin"]


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_it_refuses_an_upload_by_anyone_but_the_studys_admin(request, who, session, nifti, media_root) -> None:
    user = request.getfixturevalue(who)
    with pytest.raises(Forbidden, match="only the study's admins can upload series"):
        series_create_from_file(
            session=session, kind="t2star_mag", path=nifti.magnitude(), original_filename="m.nii.gz", by=user
        )
    assert not Series.objects.exists()
    assert stored_files(media_root) == []


def test_it_records_the_uploading_admin(admin, session, nifti, media_root) -> None:
    series = series_create_from_file(
        session=session, kind="t2star_mag", path=nifti.magnitude(), original_filename="m.nii.gz", by=admin
    )
    assert series.uploaded_by == admin and series.provenance["uploaded_by"] == "admin"


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_it_refuses_a_derived_series_or_a_version_change_by_a_non_admin(request, who, admin, session, nifti, media_root) -> None:
    magnitude = series_create_from_file(
        session=session, kind="t2star_mag", path=nifti.magnitude(), original_filename="m.nii.gz", by=admin
    )
    user = request.getfixturevalue(who)
    shape = tuple(magnitude.shape[:3])
    with pytest.raises(Forbidden):
        series_create_derived(
            by=user, session=session, kind="qsm", data=np.zeros(shape, np.float32),
            affine=np.array(magnitude.affine), provenance={},
        )
    with pytest.raises(Forbidden):
        series_set_current(series=magnitude, by=user)
    assert list(Series.objects.all()) == [magnitude]


@pytest.mark.parametrize("who", NOT_ADMINS)
def test_it_refuses_jobs_submitted_by_a_non_admin(request, who, study, session) -> None:
    user = request.getfixturevalue(who)
    with pytest.raises(Forbidden, match="only the study's admins can submit jobs"):
        job_submit(kind="selftest", study=study, by=user)
    with pytest.raises(Forbidden, match="only the study's admins can run processing jobs"):
        processing_submit(session=session, kind="brain_mask", by=user)
    assert not Job.objects.exists()


def test_a_job_without_a_study_is_for_superusers_and_the_system(admin, superuser) -> None:
    with pytest.raises(Forbidden, match="only superusers"):
        job_submit(kind="selftest", by=admin)
    assert job_submit(kind="selftest", by=superuser).created_by == superuser
    assert job_submit(kind="selftest", by=system("tests")).created_by is None


def test_a_study_created_by_the_system_needs_a_named_admin(rater, db) -> None:
    with pytest.raises(ValidationFailed, match="needs an admin"):
        study_create(by=system("tests"), name="Orphan")
    study = study_create(by=system("tests"), name="Adopted", admin=rater)
    assert list(Membership.objects.filter(study=study).values_list("user__username", "role")) == [("rater1", "admin")]
    assert study.created_by is None
