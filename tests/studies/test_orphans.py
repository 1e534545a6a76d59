"""The orphan-file sweep: files left by a rolled-back transaction go; referenced and young files stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from qsmreview.studies.models import Series
from qsmreview.studies.services.orphans import storage_sweep_orphans
from qsmreview.studies.services.series import series_create_from_file
from qsmreview.studies.tasks import sweep_orphan_files
from tests.fixtures.nifti import files_under

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


def upload(session, path: Path, admin) -> Series:
    return series_create_from_file(
        session=session, kind="t2star_mag", path=path, original_filename=path.name, by=admin
    )


@pytest.fixture
def orphan(session, nifti, media_root, admin) -> Path:
    """A file stored by an upload whose enclosing transaction then rolled back."""
    with pytest.raises(Boom), transaction.atomic():
        upload(session, nifti.magnitude(), admin)
        raise Boom
    assert not Series.objects.exists()
    (path,) = files_under(media_root)
    return path


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_rolled_back_upload_leaves_a_file_that_the_sweep_deletes(orphan: Path, media_root: Path) -> None:
    age(orphan, 2 * 3600)
    sweep = storage_sweep_orphans()
    assert [Path(n).name for n in sweep.orphans] == [orphan.name]
    assert sweep.orphan_bytes > 0
    assert not orphan.exists()
    assert files_under(media_root) == []


def test_it_keeps_referenced_files_and_orphans_younger_than_the_grace_period(
    orphan: Path, session, nifti, media_root: Path, admin
) -> None:
    kept = upload(session, nifti.magnitude(), admin)
    age(Path(kept.file.path), 10 * 3600)  # old, but referenced
    sweep = storage_sweep_orphans()  # default grace: one hour; the orphan is seconds old
    assert sweep.orphans == []
    assert [Path(n).name for n in sweep.too_young] == [orphan.name]
    assert sweep.referenced == 1
    assert sorted(p.name for p in files_under(media_root)) == sorted([orphan.name, Path(kept.file.name).name])
    # With no grace the orphan goes and the referenced file stays.
    assert [Path(n).name for n in storage_sweep_orphans(grace=timedelta(0)).orphans] == [orphan.name]
    assert [p.name for p in files_under(media_root)] == [Path(kept.file.name).name]


def test_a_dry_run_deletes_nothing(orphan: Path) -> None:
    sweep = storage_sweep_orphans(grace=timedelta(0), dry_run=True)
    assert [Path(n).name for n in sweep.orphans] == [orphan.name] and not sweep.deleted
    assert orphan.exists()


def test_the_command_reports_and_deletes(orphan: Path, capsys) -> None:
    call_command("sweep_storage", "--dry-run", "--grace-seconds", "0")
    assert "would delete 1 orphan file(s)" in capsys.readouterr().out
    assert orphan.exists()
    call_command("sweep_storage")
    out = capsys.readouterr().out
    assert "kept 1 file(s) with no row, younger than the grace period" in out
    assert orphan.exists()
    call_command("sweep_storage", "--grace-seconds", "0")
    assert "deleted 1 orphan file(s)" in capsys.readouterr().out
    assert not orphan.exists()
    with pytest.raises(CommandError, match="must not be negative"):
        call_command("sweep_storage", "--grace-seconds", "-1")


def test_the_beat_task_sweeps_with_the_configured_grace(orphan: Path, settings) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["sweep-orphan-files"]["task"] == sweep_orphan_files.name
    assert sweep_orphan_files() == 0
    settings.QSMREVIEW_ORPHAN_GRACE_SECONDS = 0
    assert sweep_orphan_files() == 1
    assert not orphan.exists()


def test_it_sweeps_an_empty_storage(media_root: Path) -> None:
    sweep = storage_sweep_orphans(grace=timedelta(0))
    assert sweep.orphans == [] and sweep.too_young == [] and sweep.referenced == 0


def test_it_deletes_the_display_cache_of_a_deleted_series_and_keeps_a_live_ones(
    session, nifti, media_root: Path, admin
) -> None:
    from qsmreview.studies.services.display import display_cache_name, series_display_bytes

    kept = upload(session, nifti.magnitude(), admin)
    gone = upload(session, nifti.phase(), admin)
    for series in (kept, gone):
        series_display_bytes(series)
        age(media_root / display_cache_name(series), 2 * 3600)
    gone_cache = display_cache_name(gone)
    gone.file.delete(save=False)
    gone.delete()

    sweep = storage_sweep_orphans()

    assert sweep.orphans == [gone_cache]
    assert not (media_root / gone_cache).exists()
    assert (media_root / display_cache_name(kept)).exists()
