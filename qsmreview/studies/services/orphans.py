"""Deleting stored files that no row references (left by a rolled-back transaction or a crash).

Four kinds of files are stored before their row is committed: series
(:mod:`qsmreview.studies.services.series`, under ``studies/``), the masks of annotation
revisions (:mod:`qsmreview.annotations.services`, under ``annotations/``), the label maps of
consensus measurement sets (:mod:`qsmreview.consensus.services`, under ``consensus/``), and
prepared exports (:mod:`qsmreview.exports.prepared`, under ``exports/``). Another is derived
from a row and cached: the display volume of a series (:mod:`qsmreview.studies.services.display`,
under ``display/``), which outlives its series when the series is deleted.
The store-then-commit service removes the file itself when its own transaction fails. It cannot do
so when an *enclosing* transaction rolls back afterwards, or when the process is killed between the
two steps. Those files are invisible (every read goes through a row), but they take space. This
sweep finds them and deletes them.

A file counts as an orphan only when no row of its kind (a
:class:`~qsmreview.studies.models.Series` under ``studies/``, an annotation
:class:`~qsmreview.annotations.models.Revision` under ``annotations/``, a series whose display
cache name it is under ``display/``) names it **and** it is older than a grace period (``QSMREVIEW_ORPHAN_GRACE_SECONDS``, default one hour). A
file whose row is still being committed is seconds old, so it is never taken. The sweep works
through Django's storage API (``listdir``, ``get_modified_time``, ``delete``), so it runs the same
on local files and on S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import Storage
from django.utils import timezone

from qsmreview.studies.models import SERIES_STORAGE_PREFIX, Series


@dataclass
class OrphanSweep:
    """What :func:`storage_sweep_orphans` found."""

    #: Files with no row, older than the grace period (deleted unless it was a dry run).
    orphans: list[str] = field(default_factory=list)
    orphan_bytes: int = 0
    #: Files with no row, but younger than the grace period (kept).
    too_young: list[str] = field(default_factory=list)
    #: Number of distinct files named by series and revision rows (a restore shares its file).
    referenced: int = 0
    deleted: bool = False


def _walk(storage: Storage, path: str) -> Iterator[str]:
    """Every file name under ``path`` in ``storage`` (depth first)."""
    try:
        dirs, files = storage.listdir(path)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{path}/{name}"
    for d in dirs:
        yield from _walk(storage, f"{path}/{d}")


def _swept() -> list[tuple[str, Storage, set[str]]]:
    """(storage prefix, storage, file names its rows reference), per kind of stored file; the
    display caches come last (their names are derived, not stored: see :func:`storage_sweep_orphans`)."""
    from qsmreview.annotations.models import ANNOTATION_STORAGE_PREFIX, Revision
    from qsmreview.consensus.models import CONSENSUS_STORAGE_PREFIX, ConsensusRun, MeasurementSet
    from qsmreview.exports.models import EXPORT_STORAGE_PREFIX, StudyExport
    from qsmreview.studies.services.display import DISPLAY_STORAGE_PREFIX, display_cache_name

    return [
        (
            SERIES_STORAGE_PREFIX,
            Series._meta.get_field("file").storage,
            set(Series.objects.values_list("file", flat=True)),
        ),
        (
            ANNOTATION_STORAGE_PREFIX,
            Revision._meta.get_field("file").storage,
            set(Revision.objects.values_list("file", flat=True)),
        ),
        (
            CONSENSUS_STORAGE_PREFIX,
            MeasurementSet._meta.get_field("lesion_labels").storage,
            {
                name
                for pair in MeasurementSet.objects.values_list("lesion_labels", "reference_labels")
                for name in pair
            }
            | {name for name in ConsensusRun.objects.values_list("vessel_proposals", flat=True) if name},
        ),
        (
            EXPORT_STORAGE_PREFIX,
            StudyExport._meta.get_field("file").storage,
            set(StudyExport.objects.values_list("file", flat=True)),
        ),
        (
            DISPLAY_STORAGE_PREFIX,
            Series._meta.get_field("file").storage,  # where series_display_bytes caches
            {display_cache_name(s) for s in Series.objects.only("sha256", "shape", "kind")},
        ),
    ]


def storage_sweep_orphans(*, grace: timedelta | None = None, dry_run: bool = False) -> OrphanSweep:
    """Delete series and annotation files that no row references and that are older than ``grace``.

    Parameters
    ----------
    grace
        Files modified more recently than this are kept even without a row (default
        ``QSMREVIEW_ORPHAN_GRACE_SECONDS``). Must not be negative.
    dry_run
        Report the orphans without deleting them.
    """
    if grace is None:
        grace = timedelta(seconds=settings.QSMREVIEW_ORPHAN_GRACE_SECONDS)
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    # Rows first, then files: a row committed after this read belongs to a file younger than grace.
    kinds = _swept()
    cutoff = timezone.now() - grace
    stored = kinds[:-1]  # the display caches' names are derived from rows, not stored in them
    result = OrphanSweep(referenced=sum(len(names) for _, _, names in stored), deleted=not dry_run)
    for prefix, storage, referenced in kinds:
        for name in _walk(storage, prefix):
            if name in referenced:
                continue
            if storage.get_modified_time(name) > cutoff:
                result.too_young.append(name)
                continue
            result.orphans.append(name)
            result.orphan_bytes += storage.size(name)
            if not dry_run:
                storage.delete(name)
    return result
