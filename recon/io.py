"""NIfTI input and output for the command line: the only file I/O in :mod:`recon`."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from recon.errors import ReconInputError
from recon.phantom import Phantom

#: Affines of images meant to share a grid may differ by this much (mm) from rounding.
AFFINE_TOL_MM = 1e-3


def load_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Data (scaled, as stored or float) and affine of a NIfTI file.

    Raises
    ------
    ReconInputError
        If the file is missing or nibabel cannot read it.
    """
    p = Path(path)
    if not p.is_file():
        raise ReconInputError(f"{p}: no such file")
    try:
        img = nib.load(str(p))
        # The array proxy applies any scl_slope/scl_inter; unscaled integers stay integers so
        # scanner phase is still recognisable.
        data = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    except ReconInputError:
        raise
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise ReconInputError(f"{p}: cannot read as NIfTI ({exc})") from exc
    return np.asarray(data), affine


def same_grid(
    shape_a: Sequence[int], affine_a: np.ndarray, shape_b: Sequence[int], affine_b: np.ndarray, what: str
) -> None:
    """Raise :class:`ReconInputError` unless the two images share a 3-D grid and affine."""
    if tuple(shape_a[:3]) != tuple(shape_b[:3]):
        raise ReconInputError(f"{what}: grid {tuple(shape_b[:3])} does not match {tuple(shape_a[:3])}")
    if not np.allclose(affine_a, affine_b, atol=AFFINE_TOL_MM):
        raise ReconInputError(f"{what}: affine differs from the first image's (not on the same grid)")


def load_echoes(paths: Sequence[str | os.PathLike[str]]) -> tuple[np.ndarray, np.ndarray]:
    """One 3-D file per echo (or a single 3-D/4-D file) as one array with echoes on axis 3.

    Returns the data (3-D for one echo, else 4-D) and the first file's affine.
    """
    if not paths:
        raise ReconInputError("no input file given")
    arrays, affine0, shape0 = [], None, None
    for path in paths:
        data, affine = load_nifti(path)
        if data.ndim == 5 and data.shape[3] == 1:
            data = data[:, :, :, 0]
        if data.ndim not in (3, 4):
            raise ReconInputError(f"{path}: expected a 3-D or 4-D image, got shape {data.shape}")
        if affine0 is None:
            affine0, shape0 = affine, data.shape
        else:
            same_grid(shape0, affine0, data.shape, affine, str(path))
        arrays.append(data if data.ndim == 4 else data[..., None])
    out = np.concatenate(arrays, axis=3) if len(arrays) > 1 else arrays[0]
    if out.ndim == 4 and out.shape[3] == 1:
        out = out[..., 0]
    assert affine0 is not None
    return out, affine0


def save_nifti(
    data: np.ndarray, affine: np.ndarray, path: str | os.PathLike[str], *, dtype: type | np.dtype = np.float32
) -> Path:
    """Write ``data`` (cast to ``dtype``) with ``affine``, atomically (temporary file, rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data).astype(dtype), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm", "sec")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + p.name, dir=p.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_phantom(phantom: Phantom, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a phantom's images as NIfTI plus ``phantom.json`` (TE, B0, lesion types, units).

    Files: ``magnitude.nii.gz`` and ``phase.nii.gz`` (4-D for several echoes, plus one
    ``magnitude_e<k>``/``phase_e<k>`` file per echo), ``chi_ppm.nii.gz``, ``field_ppm.nii.gz``,
    ``lesions.nii.gz``, ``tissue.nii.gz``, ``brain_mask.nii.gz``, ``t1_wmn.nii.gz``,
    ``t1_csfn.nii.gz``, ``flair.nii.gz``.

    Returns
    -------
    dict
        Name (file stem) to path.
    """
    out = Path(out_dir)
    a = phantom.affine
    files: dict[str, Path] = {}

    def put(name: str, data: np.ndarray, dtype: Any = np.float32) -> None:
        files[name] = save_nifti(data, a, out / f"{name}.nii.gz", dtype=dtype)

    put("magnitude", phantom.magnitude)
    put("phase", phantom.phase)
    if phantom.magnitude.ndim == 4:
        for k in range(phantom.magnitude.shape[3]):
            put(f"magnitude_e{k + 1}", phantom.magnitude[..., k])
            put(f"phase_e{k + 1}", phantom.phase[..., k])
    put("chi_ppm", phantom.chi_ppm)
    put("field_ppm", phantom.field_ppm)
    put("lesions", phantom.lesions, np.int16)
    put("tissue", phantom.tissue, np.uint8)
    put("brain_mask", phantom.brain_mask, np.uint8)
    put("t1_wmn", phantom.t1_wmn)
    put("t1_csfn", phantom.t1_csfn)
    put("flair", phantom.flair)
    meta = {
        "te_s": list(phantom.te),
        "b0_t": phantom.b0,
        "voxel_size_mm": list(phantom.voxel_size),
        "b0_dir": list(phantom.b0_dir),
        "phase_offset_rad": phantom.phase_offset,
        "lesion_types": {str(k): v for k, v in phantom.lesion_types.items()},
        "lesion_contrast_ppm": {str(k): v for k, v in phantom.lesion_contrast_ppm.items()},
        "tissue_codes": {"0": "background", "1": "CSF", "2": "GM", "3": "WM"},
        "units": {"chi_ppm": "ppm", "field_ppm": "ppm", "phase": "rad", "te_s": "s", "b0_t": "T"},
    }
    path = out / "phantom.json"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-phantom.json", dir=out)
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh, indent=2)
    os.replace(tmp, path)
    files["phantom"] = path
    return files
