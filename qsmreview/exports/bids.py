"""Write a study's QSM, consensus lesions, reference ROIs and lesion table as a BIDS derivatives
dataset: no Django here, plain inputs in, files out (docs/export.md).

Layout (BIDS 1.10 derivatives; the entity order is sub, ses, label/desc, then the suffix)::

    dataset_description.json      DatasetType "derivative", GeneratedBy [{Name: qsmreview, ...}]
    README
    participants.tsv/.json        participant_id and the study's own subject code
    sessions.json                 the column of every sub-<s>_sessions.tsv
    lesions.tsv/.json             the lesion table of every session, with its data dictionary
    .bidsignore                   lesions.tsv/.json (not a file BIDS names)
    sub-<s>/sub-<s>_sessions.tsv  session_id and the study's own session label
    sub-<s>/ses-<t>/anat/
        sub-<s>_ses-<t>_Chimap.nii.gz                 QSM, ppm (+ .json)
        sub-<s>_ses-<t>_desc-consensus_dseg.nii.gz    one id per consensus lesion (+ .json, .tsv)
        sub-<s>_ses-<t>_desc-reference_dseg.nii.gz    reference ROIs, 10 x lesion + 1 WM / 2 GM (+ .json, .tsv)

Lesion ids and reference ROIs are discrete segmentations (several labels in one image), so they
are ``_dseg`` images with a ``_dseg.tsv`` look-up table (index, name), as BIDS common derivatives
asks; ``_mask`` is for binary images.

Labels must be alphanumeric in BIDS: :func:`bids_labels` maps the study's codes to labels (ASCII
letters and digits kept, everything else dropped, clashes numbered) and the original code is kept
in ``participants.tsv`` / ``sessions.tsv``.

Atomic: the dataset is built in a temporary folder next to the target and renamed into place (a
zip is written to a temporary file and renamed); on any failure nothing is left behind and an
existing target is untouched.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

BIDS_VERSION = "1.10.0"
#: Largest difference (mm) between two affines of one session's grid.
AFFINE_TOLERANCE_MM = 1e-3

#: A volume's data: an array, a NIfTI path, or a callable giving a context manager of a path
#: (e.g. a stored file copied to a local temporary file only while it is read).
VolumeSource = np.ndarray | Path | Callable[[], AbstractContextManager[Path]]

#: The lesion table's columns after participant_id and session_id, and their data dictionary
#: (BIDS tabular sidecar: Description, Units, Levels).
LESION_COLUMNS: dict[str, dict[str, Any]] = {
    "participant_id": {"Description": "BIDS subject label of the row (sub-<label>)"},
    "session_id": {"Description": "BIDS session label of the row (ses-<label>)"},
    "subject": {"Description": "the subject's code in the study (before BIDS sanitising)"},
    "lesion": {
        "Description": "consensus lesion id: its value in the session's desc-consensus_dseg image"
    },
    "lesion_type": {
        "Description": "lesion class in effect (a reviewer's decision, else the 75 % rule's)",
        "Levels": {
            "wm": "white matter lesion (cortical fraction <= 25 %)",
            "cortical": "cortical lesion (cortical fraction >= 75 %)",
            "mixed": "mixed lesion, measured as a cortical and a WM portion",
            "unclassified": "no GM or WM voxel: not measured",
        },
    },
    "portion": {
        "Description": "the tissue of the lesion measured in this row",
        "Levels": {"wm": "white matter voxels", "cortical": "grey matter voxels"},
    },
    "relative_susceptibility_ppm": {
        "Description": "lesion_mean_ppm - reference_mean_ppm",
        "Units": "ppm",
    },
    "rule_type": {
        "Description": "the class the 75 % rule gave (differs from lesion_type when a reviewer decided)",
        "Levels": {"wm": "white matter", "cortical": "cortical", "mixed": "mixed", "unclassified": "unclassified"},
    },
    "n_voxels": {"Description": "voxels of the portion"},
    "volume_mm3": {"Description": "volume of the portion", "Units": "mm^3"},
    "cortical_fraction": {"Description": "GM / (GM + WM) voxels of the whole lesion (FSL FAST labels)"},
    "raters": {"Description": "raters who marked the lesion, ';'-separated"},
    "lesion_mean_ppm": {"Description": "mean QSM over the portion inside the QSM mask", "Units": "ppm"},
    "lesion_sd_ppm": {"Description": "sample SD of QSM over the portion inside the QSM mask", "Units": "ppm"},
    "reference_mean_ppm": {"Description": "mean QSM over the reference ROI", "Units": "ppm"},
    "reference_sd_ppm": {"Description": "sample SD of QSM over the reference ROI", "Units": "ppm"},
    "reference_n_voxels": {"Description": "voxels of the reference ROI"},
    "excluded": {
        "Description": "excluded by quality control: kept in the table, left out of statistics",
        "Levels": {"true": "excluded", "false": "included"},
    },
    "exclusion_reason": {
        "Description": "why it was excluded (n/a when included)",
        "Levels": {
            "vessel": "a vessel",
            "artifact": "an artifact",
            "eroded": "eroded away (outside the QSM mask)",
            "other": "other",
        },
    },
    "reference_roi": {
        "Description": "the reference ROI's value in the session's desc-reference_dseg image (10 x lesion + 1 WM, + 2 cortical)"
    },
    "consensus_run": {"Description": "id of the qsmreview consensus run the row comes from"},
    "measurement_set": {"Description": "number of the run's measurement set (1 = the rules', higher = after QC decisions)"},
}


class ExportError(ValueError):
    """The inputs cannot be written as a dataset (a grid mismatch, a target in the way, ...)."""


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """One image to write, with its JSON sidecar (keys beyond the writer's own)."""

    source: VolumeSource
    #: 4 x 4 voxel-to-world (mm); None: the NIfTI file's own.
    affine: np.ndarray | None = None
    sidecar: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelVolume(Volume):
    """A discrete segmentation: ``labels`` maps each index present to its name (dseg.tsv)."""

    labels: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionExport:
    """One session: the study's own subject code and session label (sanitised by the writer)."""

    subject: str
    session: str
    chimap: Volume | None = None
    lesions: LabelVolume | None = None
    reference: LabelVolume | None = None
    #: Lesion-table rows: keys of :data:`LESION_COLUMNS` (participant_id and session_id are set
    #: by the writer; missing keys are n/a).
    lesion_rows: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class DatasetExport:
    name: str
    sessions: Sequence[SessionExport]
    #: GeneratedBy[0]: Name, Version, Description (CodeURL optional).
    generated_by: Mapping[str, Any]
    source_datasets: Sequence[Mapping[str, Any]] = ()
    readme: str = ""


@dataclass
class WriteReport:
    path: Path
    files: list[str] = field(default_factory=list)
    subjects: dict[str, str] = field(default_factory=dict)
    sessions: dict[tuple[str, str], str] = field(default_factory=dict)
    n_lesion_rows: int = 0


# --- labels and names --------------------------------------------------------------------------


def bids_label(text: str) -> str:
    """``text`` as a BIDS label: ASCII letters and digits only (accents folded, the rest dropped).

    >>> bids_label("MS-001"), bids_label("Müller_2"), bids_label("ü ")
    ('MS001', 'Muller2', '')
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9]", "", folded)


def bids_labels(codes: Iterable[str], *, empty: str = "unnamed") -> dict[str, str]:
    """A distinct BIDS label for each code, in sorted order of the codes.

    A code with nothing alphanumeric becomes ``empty``; a label already taken gets the next free
    number appended (``P01``, ``P01x2``, ...), so the mapping is deterministic and one-to-one.
    """
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for code in sorted(set(codes)):
        base = bids_label(code) or empty
        label, n = base, 1
        while label.lower() in taken:  # case-insensitive file systems
            n += 1
            label = f"{base}x{n}"
        taken.add(label.lower())
        mapping[code] = label
    return mapping


def file_stem(sub: str, ses: str, suffix: str, *, desc: str | None = None, label: str | None = None) -> str:
    """``sub-<sub>_ses-<ses>[_label-<label>][_desc-<desc>]_<suffix>`` (BIDS entity order)."""
    parts = [f"sub-{sub}", f"ses-{ses}"]
    if label:
        parts.append(f"label-{label}")
    if desc:
        parts.append(f"desc-{desc}")
    return "_".join([*parts, suffix])


# --- writing -------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=False) + "\n", encoding="utf-8")


def _tsv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(map(str, value)) if value else "n/a"
    text = str(value)
    if text == "":
        return "n/a"
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_tsv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_tsv_cell(row.get(c)) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _load(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    source = volume.source
    if isinstance(source, np.ndarray):
        data, affine = source, volume.affine
    elif isinstance(source, Path):
        image = nib.load(str(source))
        data, affine = np.asanyarray(image.dataobj), image.affine
    else:
        with source() as path:
            image = nib.load(str(path))
            data, affine = np.asanyarray(image.dataobj), image.affine
    if volume.affine is not None:
        affine = volume.affine
    if affine is None:
        raise ExportError("a volume given as an array needs its affine")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ExportError("an affine must be a finite 4 x 4 matrix")
    return np.asarray(data), affine


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    image.set_data_dtype(data.dtype)
    nib.save(image, str(path))


def _labels_table(labels: Mapping[int, str], data: np.ndarray) -> list[dict[str, Any]]:
    """dseg.tsv rows: every non-zero value in the image, named (unnamed ones as label<n>)."""
    present = sorted(int(v) for v in np.unique(data) if v != 0)
    names = {int(k): v for k, v in labels.items()}
    return [{"index": i, "name": names.get(i, f"label{i}")} for i in sorted(set(present) | set(names))]


def _write_session(root: Path, sub: str, ses: str, item: SessionExport, report: WriteReport) -> None:
    anat = root / f"sub-{sub}" / f"ses-{ses}" / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    grid: tuple[str, tuple[int, ...], np.ndarray] | None = None

    def write(volume: Volume, stem: str, required: dict[str, Any], *, labels: bool = False) -> np.ndarray:
        nonlocal grid
        data, affine = _load(volume)
        if labels and not np.issubdtype(data.dtype, np.integer) and not np.array_equal(data, np.round(data)):
            raise ExportError(f"{stem}: a segmentation must hold integer labels")
        if data.ndim != 3:
            raise ExportError(f"{stem}: a 3-D volume is expected, got shape {data.shape}")
        if grid is None:
            grid = (stem, data.shape, affine)
        elif data.shape != grid[1] or np.abs(affine - grid[2]).max() > AFFINE_TOLERANCE_MM:
            raise ExportError(
                f"{stem} is not on the grid of {grid[0]} (shape {data.shape} vs {grid[1]}, or affines differ "
                f"by more than {AFFINE_TOLERANCE_MM} mm)"
            )
        _save_nifti(anat / f"{stem}.nii.gz", data, affine)
        _write_json(anat / f"{stem}.json", {**required, **volume.sidecar})
        report.files += [f"{anat.relative_to(root)}/{stem}{ext}" for ext in (".nii.gz", ".json")]
        return data

    uri = f"bids::sub-{sub}/ses-{ses}/anat/"
    if item.chimap is not None:
        write(item.chimap, file_stem(sub, ses, "Chimap"), {"Units": "ppm"})
    for volume, desc, description, sources in (
        (item.lesions, "consensus", "consensus lesions: one id per lesion (lesions.tsv column lesion)", []),
        (
            item.reference,
            "reference",
            "reference ROIs: 10 x lesion + 1 (white matter) or + 2 (cortical)",
            [f"{uri}{file_stem(sub, ses, 'dseg', desc='consensus')}.nii.gz"] if item.lesions is not None else [],
        ),
    ):
        if volume is None:
            continue
        stem = file_stem(sub, ses, "dseg", desc=desc)
        data = write(volume, stem, {"Description": description, **({"Sources": sources} if sources else {})}, labels=True)
        _write_tsv(anat / f"{stem}.tsv", ("index", "name"), _labels_table(volume.labels, data))
        report.files.append(f"{anat.relative_to(root)}/{stem}.tsv")


def _build(dataset: DatasetExport, root: Path, progress: Callable[[str], None]) -> WriteReport:
    report = WriteReport(path=root)
    subjects = bids_labels(s.subject for s in dataset.sessions)
    sessions_of: dict[str, list[SessionExport]] = {}
    for item in dataset.sessions:
        sessions_of.setdefault(item.subject, []).append(item)
    description = {
        "Name": dataset.name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [dict(dataset.generated_by)],
    }
    if dataset.source_datasets:
        description["SourceDatasets"] = [dict(s) for s in dataset.source_datasets]
    _write_json(root / "dataset_description.json", description)
    (root / "README").write_text(dataset.readme or f"{dataset.name}\n", encoding="utf-8")
    _write_tsv(
        root / "participants.tsv",
        ("participant_id", "source_code"),
        [{"participant_id": f"sub-{subjects[c]}", "source_code": c} for c in sorted(sessions_of)],
    )
    _write_json(
        root / "participants.json",
        {"source_code": {"Description": "the subject's code in the study (before BIDS sanitising)"}},
    )
    _write_json(
        root / "sessions.json",
        {"source_label": {"Description": "the session's label in the study (before BIDS sanitising)"}},
    )
    # lesions.tsv is not a file the BIDS specification names: tell validators to leave it alone
    (root / ".bidsignore").write_text("lesions.tsv\nlesions.json\n", encoding="utf-8")
    report.files += [
        "dataset_description.json", "README", "participants.tsv", "participants.json", "sessions.json", ".bidsignore"
    ]
    lesion_rows: list[dict[str, Any]] = []
    for code in sorted(sessions_of):
        sub = subjects[code]
        report.subjects[code] = sub
        session_labels = bids_labels(s.session for s in sessions_of[code])
        (root / f"sub-{sub}").mkdir()
        _write_tsv(
            root / f"sub-{sub}" / f"sub-{sub}_sessions.tsv",
            ("session_id", "source_label"),
            [{"session_id": f"ses-{session_labels[s.session]}", "source_label": s.session} for s in sessions_of[code]],
        )
        report.files.append(f"sub-{sub}/sub-{sub}_sessions.tsv")
        for item in sorted(sessions_of[code], key=lambda s: s.session):
            ses = session_labels[item.session]
            report.sessions[(code, item.session)] = ses
            progress(f"sub-{sub} ses-{ses}")
            _write_session(root, sub, ses, item, report)
            for row in item.lesion_rows:
                lesion_rows.append({**row, "participant_id": f"sub-{sub}", "session_id": f"ses-{ses}"})
    _write_tsv(root / "lesions.tsv", tuple(LESION_COLUMNS), lesion_rows)
    _write_json(root / "lesions.json", LESION_COLUMNS)
    report.files += ["lesions.tsv", "lesions.json"]
    report.n_lesion_rows = len(lesion_rows)
    return report


def _zip_folder(folder: Path, zip_path: Path, top: str) -> None:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                # NIfTI are gzip already: stored, not deflated again
                compress = zipfile.ZIP_STORED if path.name.endswith(".gz") else zipfile.ZIP_DEFLATED
                zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}", compress_type=compress)


def write_dataset(
    dataset: DatasetExport,
    target: Path | str,
    *,
    as_zip: bool = False,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> WriteReport:
    """Write ``dataset`` as a BIDS derivatives folder (or zip) at ``target``, atomically.

    Parameters
    ----------
    dataset : what to write; volumes are read one at a time.
    target : the folder (or ``.zip`` file) to create; its parent must exist.
    as_zip : write one zip whose single top-level folder is named after ``target`` (without
        ``.zip``), as ``import_bids`` and the upload page accept.
    overwrite : replace an existing target; without it an existing target is refused.
    progress : called with a line per step (e.g. ``"sub-MS001 ses-01"``).

    Returns
    -------
    WriteReport : the final path, the files written (relative to the dataset's root) and the
        subject/session label mappings.

    Raises
    ------
    ExportError
        The target exists (without ``overwrite``) or its parent does not; a volume is off its
        session's grid, not 3-D, or a segmentation is not integer. Nothing is left behind and an
        existing target is unchanged, whatever fails (also ``OSError`` from the file system).
    """
    target = Path(target)
    say = progress or (lambda line: None)
    parent = target.parent
    if not parent.is_dir():
        raise ExportError(f"the folder {parent} does not exist")
    if target.exists() and not overwrite:
        raise ExportError(f"{target} exists already (overwrite it explicitly)")
    if target.exists() and as_zip != target.is_file():
        raise ExportError(f"{target} exists and is not a {'file' if as_zip else 'folder'}")
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        report = _build(dataset, build, say)
        if as_zip:
            say("zipping")
            fd, tmp_zip = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
            os.close(fd)
            try:
                top = target.name[:-4] if target.name.lower().endswith(".zip") else target.name
                _zip_folder(build, Path(tmp_zip), top)
                os.replace(tmp_zip, target)  # atomic, replaces an existing file
            except BaseException:
                Path(tmp_zip).unlink(missing_ok=True)
                raise
        else:
            _move_folder_into_place(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    report.path = target
    say(f"wrote {target}")
    return report


def _move_folder_into_place(build: Path, target: Path) -> None:
    """Rename ``build`` to ``target``; an existing target is set aside first and restored if the
    rename fails, removed once it succeeded."""
    if not target.exists():
        os.rename(build, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    aside.rmdir()
    os.rename(target, aside)
    try:
        os.rename(build, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)
