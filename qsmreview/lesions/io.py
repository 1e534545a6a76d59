"""NIfTI, CSV and JSON for the lesion CLI: the only file I/O in :mod:`qsmreview.lesions`.

Outputs are written atomically: every file goes to a temporary directory beside the output
directory first; a new output directory is then renamed into place in one step, an existing one
gets each file by :func:`os.replace` (each file whole, never half-written).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.pipeline import TABLE_COLUMNS, SessionAnalysis

#: Affines of images on one grid may differ by this much (mm) from rounding.
AFFINE_TOL_MM = 1e-3
#: The files :func:`write_outputs` writes.
OUTPUT_FILES = ("consensus_lesions.nii.gz", "reference_rois.nii.gz", "lesions.csv", "lesions.json")


def load_nifti(path: str | os.PathLike[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D NIfTI image's data and affine.

    Raises
    ------
    LesionInputError
        Missing or unreadable file, or not 3-D (a trailing axis of length 1 is dropped).
    """
    p = Path(path)
    if not p.is_file():
        raise LesionInputError(f"{what} {p}: no such file")
    try:
        img = nib.load(str(p))
        data = np.asarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise LesionInputError(f"{what} {p}: cannot read as NIfTI ({exc})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise LesionInputError(f"{what} {p}: expected a 3-D image, got shape {data.shape}")
    return data, affine


def same_grid(reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray], what: str) -> None:
    """Raise :class:`LesionInputError` unless ``other`` (data, affine) is on ``reference``'s grid."""
    if other[0].shape != reference[0].shape:
        raise LesionInputError(f"{what}: grid {other[0].shape} does not match the first mask's {reference[0].shape}")
    if not np.allclose(other[1], reference[1], atol=AFFINE_TOL_MM):
        raise LesionInputError(f"{what}: affine differs from the first mask's (not on the same grid)")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str], columns: Sequence[str] = TABLE_COLUMNS) -> None:
    """The lesion table as CSV: a header of ``columns``, empty cells for None, lists joined by ';'."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def analysis_document(analysis: SessionAnalysis) -> dict[str, Any]:
    """Everything but the arrays, JSON-ready (NaN -> null)."""
    return _jsonable(
        {
            "subject": analysis.subject,
            "raters": list(analysis.raters),
            "voxel_size_mm": list(analysis.voxel_size),
            "params": analysis.params.as_dict(),
            "columns": list(TABLE_COLUMNS),
            "rows": analysis.rows,
            "candidates": analysis.candidates,
            "agreement": analysis.agreement,
            "vessel_proposal_voxels": None
            if analysis.vessel_proposals is None
            else int(np.count_nonzero(analysis.vessel_proposals)),
            "timings_s": analysis.timings,
        }
    )


def write_json(analysis: SessionAnalysis, path: str | os.PathLike[str]) -> None:
    """:func:`analysis_document` as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(analysis_document(analysis), f, indent=1, allow_nan=False)
        f.write("\n")


def _save_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(np.asarray(data, dtype=np.int32), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))


def write_outputs(analysis: SessionAnalysis, affine: np.ndarray, out: str | os.PathLike[str]) -> list[Path]:
    """Write :data:`OUTPUT_FILES` into ``out`` atomically (module docstring); return their paths."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise LesionInputError(f"output {target} exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        _save_nifti(analysis.lesion_labels, affine, tmp / OUTPUT_FILES[0])
        _save_nifti(analysis.reference_labels, affine, tmp / OUTPUT_FILES[1])
        write_csv(analysis.rows, tmp / OUTPUT_FILES[2])
        write_json(analysis, tmp / OUTPUT_FILES[3])
        if not target.exists():
            os.rename(tmp, target)
        else:
            for name in OUTPUT_FILES:
                os.replace(tmp / name, target / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [target / name for name in OUTPUT_FILES]
