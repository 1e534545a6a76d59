"""Export a study as a BIDS derivatives dataset: gather what the acting user may read, with its
provenance, and hand plain inputs to :mod:`qsmreview.exports.bids` (docs/export.md).

Only the study's admins and PI (and superusers, and the system) may export: the dataset holds the
QSM, the consensus and the raters' names, which a rater must never see. For anyone else the study
does not exist here (:class:`~qsmreview.errors.NotFound`), as on every other route.

What is exported, per session of the study:

- the current QSM on the T2* grid (the newest if several labels are current), with its series id,
  version, checksum and provenance (solver, parameters, inputs) as the user may see it;
- the current consensus run's current measurement set: the lesion and reference ROI label maps
  and the lesion table rows, with the run's id, inputs (revisions, tissue, QSM, brain mask with
  checksums), parameters, code version and the decisions applied.

A session with neither is left out. Reads go through :mod:`qsmreview.access`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.fields.files import FieldFile
from django.utils.text import slugify

from qsmreview.access import (
    AnyUser,
    Actor,
    can_see_unblinded,
    consensus_runs_visible_to,
    provenance_visible_to,
    series_visible_to,
    sessions_with_consensus_visible_to,
    studies_visible_to,
)
from qsmreview.consensus.compute import code_version
from qsmreview.consensus.models import ConsensusRun, MeasurementSet, RunStatus
from qsmreview.errors import Gone, NotFound, ValidationFailed
from qsmreview.exports.bids import (
    DatasetExport,
    ExportError,
    LabelVolume,
    SessionExport,
    Volume,
    WriteReport,
    write_dataset,
)
from qsmreview.studies.models import Series, SeriesKind, Space, Study
from qsmreview.studies.storage import CHUNK_BYTES, series_local_path

CODE_URL = "https://github.com/qsmreview/qsmreview"
REFERENCE_SIDES = {1: "wm", 2: "cortical"}


def study_for_export(*, by: Actor, study: Study | int | str) -> Study:
    """The study to export, by object, id or name, if ``by`` may export it; else NotFound.

    Admins and PI of the study, superusers and the system may; raters and everyone else get the
    same "no such study" as for a study that does not exist.
    """
    if by is None or not by.is_authenticated:
        raise NotFound("no such study")
    visible = studies_visible_to(by)
    found: Study | None
    if isinstance(study, Study):
        found = visible.filter(pk=study.pk).first()
    elif isinstance(study, int) or (isinstance(study, str) and study.isascii() and study.isdigit()):
        found = visible.filter(pk=int(study)).first() if int(study) < 2**63 else None
        if found is None and isinstance(study, str):
            found = visible.filter(name=study).first()
    else:
        found = visible.filter(name=str(study)).first()
    if found is None or not can_see_unblinded(by, found):
        raise NotFound("no such study")
    return found


def user_for_export(username: str) -> Any:
    """The active user named ``username`` (``export_study --as-user``); else NotFound."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"no active user named {username!r}")
    return user


def export_basename(study: Study) -> str:
    """A file-system-safe name for the study's dataset, e.g. ``ms-7t-qsm-bids``."""
    return f"{slugify(study.name) or f'study-{study.pk}'}-bids"


@contextmanager
def _stored_local_path(file: FieldFile, what: str) -> Iterator[Path]:
    """A local path of a stored file (the file itself on local storage, a temporary copy on S3)."""
    storage, name = file.storage, file.name
    try:
        local = Path(storage.path(name))
    except NotImplementedError:
        local = None
    if local is not None:
        if not local.is_file():
            raise Gone(f"the {what} is missing from storage")
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="qsmreview-export-") as tmp:
        dest = Path(tmp) / Path(name).name
        try:
            with storage.open(name, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
        except (FileNotFoundError, OSError) as exc:
            raise Gone(f"the {what} is missing from storage") from exc
        yield dest


def _series_source(series: Series) -> Callable[[], Any]:
    @contextmanager
    def source() -> Iterator[Path]:
        try:
            with series_local_path(series) as path:
                if not path.is_file():
                    raise FileNotFoundError(path)
                yield path
        except FileNotFoundError as exc:
            raise Gone(f"the file of series {series.pk} is missing from storage") from exc

    return source


def _label_source(measurements: MeasurementSet, field: str, what: str) -> Callable[[], Any]:
    return lambda: _stored_local_path(getattr(measurements, field), f"{what} label map of consensus run {measurements.run_id}")


def _series_ref(series: Series | None, version: int | None = None, sha256: str = "") -> dict[str, Any] | None:
    if series is None and not sha256:
        return None
    return {
        "series": series.pk if series else None,
        "version": version if version is not None else (series.version if series else None),
        "sha256": sha256 or (series.sha256 if series else ""),
    }


def _chimap(by: AnyUser, series: Series) -> Volume:
    return Volume(
        _series_source(series),
        sidecar={
            "Description": "quantitative susceptibility map (QSM) on the session's T2* grid",
            "MagneticFieldStrength": series.b0_t or series.session.field_strength_t,
            "qsmreview": {
                "series": series.pk,
                "kind": series.kind,
                "label": series.label,
                "version": series.version,
                "sha256": series.sha256,
                "created_at": series.created_at.isoformat(),
                "job": series.derived_by_id,
                "provenance": provenance_visible_to(by, series),
            },
        },
    )


def _run_provenance(run: ConsensusRun, measurements: MeasurementSet, *, sha256: str) -> dict[str, Any]:
    return {
        "consensus_run": run.pk,
        "measurement_set": measurements.number,
        "sha256": sha256,
        "created_at": run.created_at.isoformat(),
        "measurements_created_at": measurements.created_at.isoformat(),
        "trigger": run.trigger,
        "parameters": run.params,
        "code_version": run.code_version,
        "decisions_applied": measurements.decisions_applied,
        "inputs": {
            "revisions": run.revisions,
            "tissue": _series_ref(run.tissue_series, run.tissue_version, run.tissue_sha256),
            "qsm": _series_ref(run.qsm_series, run.qsm_version, run.qsm_sha256),
            "brain_mask": _series_ref(run.brain_mask_series, None, run.brain_mask_sha256),
        },
    }


def _row(row: Any, run: ConsensusRun, measurements: MeasurementSet) -> dict[str, Any]:
    return {
        "subject": row.subject,
        "lesion": row.lesion,
        "lesion_type": row.lesion_type,
        "portion": row.portion,
        "relative_susceptibility_ppm": row.relative_susceptibility_ppm,
        "rule_type": row.rule_type or row.lesion_type,
        "n_voxels": row.n_voxels,
        "volume_mm3": row.volume_mm3,
        "cortical_fraction": row.cortical_fraction,
        "raters": list(row.raters or []),
        "lesion_mean_ppm": row.lesion_mean_ppm,
        "lesion_sd_ppm": row.lesion_sd_ppm,
        "reference_mean_ppm": row.reference_mean_ppm,
        "reference_sd_ppm": row.reference_sd_ppm,
        "reference_n_voxels": row.reference_n_voxels,
        "reference_roi": (row.extras or {}).get("reference_roi"),
        "excluded": row.excluded,
        "exclusion_reason": row.exclusion_reason,
        "consensus_run": run.pk,
        "measurement_set": measurements.number,
    }


def _consensus(run: ConsensusRun, measurements: MeasurementSet) -> tuple[LabelVolume, LabelVolume, list[dict]]:
    rows = list(measurements.rows.order_by("lesion", "portion"))
    types = {r.lesion: r.lesion_type for r in rows}
    lesion_names = {n: f"lesion {n} ({t})" for n, t in types.items()}
    reference_names = {
        10 * n + side: f"reference of lesion {n} ({name} portion)" for n in types for side, name in REFERENCE_SIDES.items()
    }
    lesions = LabelVolume(
        _label_source(measurements, "lesion_labels", "lesion"),
        sidecar={"qsmreview": _run_provenance(run, measurements, sha256=measurements.lesion_labels_sha256)},
        labels=lesion_names,
    )
    reference = LabelVolume(
        _label_source(measurements, "reference_labels", "reference"),
        sidecar={"qsmreview": _run_provenance(run, measurements, sha256=measurements.reference_labels_sha256)},
        labels=reference_names,
    )
    return lesions, reference, [_row(r, run, measurements) for r in rows]


def study_export_dataset(*, by: Actor, study: Study) -> DatasetExport:
    """What :func:`study_export` writes: the plain inputs of :func:`~qsmreview.exports.bids.write_dataset`.

    Volumes are not read here; each is opened only while the writer copies it.
    """
    study = study_for_export(by=by, study=study)
    sessions = list(
        sessions_with_consensus_visible_to(by)
        .filter(subject__study=study)
        .select_related("subject")
        .order_by("subject__code", "label")
    )
    qsm: dict[int, Series] = {}
    for series in (
        series_visible_to(by)
        .filter(session__in=sessions, kind=SeriesKind.QSM, is_current=True, space=Space.T2STAR)
        .select_related("session")
        .order_by("created_at", "pk")
    ):
        qsm[series.session_id] = series  # the newest current one when several labels are current
    runs = {
        run.session_id: run
        for run in consensus_runs_visible_to(by)
        .filter(session__in=sessions, current=True, status=RunStatus.SUCCEEDED)
        .select_related("tissue_series", "qsm_series", "brain_mask_series")
    }
    items = []
    for session in sessions:
        run = runs.get(session.pk)
        measurements = run.measurement_sets.filter(current=True).first() if run else None
        if session.pk not in qsm and measurements is None:
            continue
        lesions = reference = None
        rows: list[dict] = []
        if run is not None and measurements is not None:
            lesions, reference, rows = _consensus(run, measurements)
        items.append(
            SessionExport(
                subject=session.subject.code,
                session=session.label,
                chimap=_chimap(by, qsm[session.pk]) if session.pk in qsm else None,
                lesions=lesions,
                reference=reference,
                lesion_rows=rows,
            )
        )
    version = code_version()
    return DatasetExport(
        name=study.name,
        sessions=items,
        generated_by={
            "Name": "qsmreview",
            "Version": version["qsmreview"],
            "CodeURL": CODE_URL,
            "Description": (
                "QSM (MEDI), consensus lesions of three blinded raters (majority vote, 75 % cortical "
                "rule), reference ROIs and per-lesion relative susceptibility, exported from the "
                f"study {study.name!r}"
            ),
        },
        readme=_readme(study, by, len(items), version),
    )


def _readme(study: Study, by: Actor, n_sessions: int, version: dict[str, str]) -> str:
    return (
        f"# {study.name}: QSM and consensus lesions (BIDS derivatives)\n\n"
        f"Exported by qsmreview {version['qsmreview']} for {by.get_username()}; {n_sessions} session(s).\n\n"
        "- sub-<s>/ses-<t>/anat/*_Chimap.nii.gz: QSM in ppm on the T2* grid.\n"
        "- *_desc-consensus_dseg.nii.gz (+ .tsv): consensus lesions, one id per lesion (the lesion column of lesions.tsv).\n"
        "- *_desc-reference_dseg.nii.gz (+ .tsv): reference ROIs, 10 x lesion + 1 (WM) or + 2 (cortical).\n"
        "- lesions.tsv (+ lesions.json): one row per lesion or portion of a mixed lesion, every session.\n"
        "- participants.tsv and sub-<s>/sub-<s>_sessions.tsv map the BIDS labels to the study's own codes.\n\n"
        "Each JSON sidecar records the qsmreview series or consensus run it comes from, with checksums,\n"
        "parameters and code versions. Layout and columns: docs/export.md in qsmreview.\n"
    )


def study_export(
    *,
    by: Actor,
    study: Study | int | str,
    out: Path | str,
    as_zip: bool = False,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> WriteReport:
    """Write the study's BIDS derivatives dataset at ``out`` (a folder, or a zip), atomically.

    Raises
    ------
    NotFound
        ``by`` may not export the study (raters, outsiders) or it does not exist.
    ValidationFailed
        The target is in the way or its folder missing, or a volume is off its session's grid.
    Gone
        A stored file is missing from storage. Nothing is written in any of these cases.
    """
    found = study_for_export(by=by, study=study)
    dataset = study_export_dataset(by=by, study=found)
    if progress is not None:
        progress(f"exporting {len(dataset.sessions)} session(s) of {found.name!r}")
    return _write(dataset, Path(out), as_zip=as_zip, overwrite=overwrite, progress=progress)


def _write(dataset: DatasetExport, out: Path, **options: Any) -> WriteReport:
    try:
        return write_dataset(dataset, out, **options)
    except ExportError as exc:
        raise ValidationFailed(str(exc)) from exc


@contextmanager
def study_export_zip(
    *, by: Actor, study: Study | int | str, report: Callable[[float, str], None] | None = None
) -> Iterator[tuple[Path, str, WriteReport]]:
    """The study's dataset as a temporary zip file (path, download name, what was written),
    removed on exit. ``report(fraction, stage)`` follows the sessions written, then the zipping."""
    found = study_for_export(by=by, study=study)
    name = f"{export_basename(found)}.zip"
    dataset = study_export_dataset(by=by, study=found)
    steps, done = len(dataset.sessions) + 1, 0  # each session, then the zip

    def said(line: str) -> None:
        nonlocal done
        done += 1
        if report is not None:
            report(min(done / steps, 1.0), line)

    tmp = Path(tempfile.mkdtemp(prefix="qsmreview-export-", dir=settings.FILE_UPLOAD_TEMP_DIR))
    try:
        written = _write(dataset, tmp / name, as_zip=True, progress=said)
        yield tmp / name, name, written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
