"""The edge between the app and the numerical core (:mod:`qsmreview.lesions.pipeline`).

Loads the stored inputs into arrays, calls the core, and turns its results into plain Python
(NaN as None) for rows and JSON. No database writes here: :mod:`qsmreview.consensus.services`
stores what this returns.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np

from qsmreview.consensus.inputs import ConsensusInputs, load_revision_mask
from qsmreview.lesions.columns import CORE_COLUMNS
from qsmreview.studies.models import Series
from qsmreview.studies.storage import series_local_path
from recon.geometry import voxel_size_from_affine

#: The QSM mask is the brain mask eroded by this distance (mm), as the QSM reconstruction does
#: (:func:`recon.mask.erode_mask`, ``erosion_mm`` of :func:`recon.pipeline.qsm`).
QSM_EROSION_MM = 2.5

#: Columns of a lesion row stored in their own fields; every other key goes to ``extras``.
ROW_COLUMNS = CORE_COLUMNS


def plain(value: Any) -> Any:
    """``value`` as JSON: NumPy scalars and arrays as Python, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_volume(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """A stored series as (array in its stored dtype, 4x4 affine)."""
    with series_local_path(series) as path:
        image = nib.load(str(path))
        return np.asarray(image.dataobj), np.asarray(image.affine, dtype=np.float64)


def code_version() -> dict[str, str]:
    import recon

    version = "unknown"
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("qsmreview")
    except Exception:
        pass
    return {"qsmreview": version, "recon": recon.__version__, "numpy": np.__version__, "python": platform.python_version()}


def votes_of(revision_lesions: Sequence[Mapping[str, Any]], affine: np.ndarray) -> list[tuple[tuple[int, int, int], str]]:
    """A revision's class votes as (anchor voxel, vote) pairs, the core's form."""
    inverse = np.linalg.inv(affine)
    votes = []
    for lesion in revision_lesions or []:
        anchor = lesion.get("anchor_mm")
        if not anchor or len(anchor) != 3:
            continue
        ijk = np.rint(inverse[:3, :3] @ np.asarray(anchor, dtype=float) + inverse[:3, 3]).astype(int)
        votes.append(((int(ijk[0]), int(ijk[1]), int(ijk[2])), str(lesion.get("vote") or "")))
    return votes


@dataclass
class Loaded:
    """The arrays of a run's inputs."""

    masks: dict[str, np.ndarray]
    votes: dict[str, list[tuple[tuple[int, int, int], str]]]
    tissue: np.ndarray
    affine: np.ndarray
    voxel_size: tuple[float, float, float]
    qsm: np.ndarray | None
    qsm_mask: np.ndarray | None


def qsm_mask_of(brain: np.ndarray | None, qsm: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Where QSM is measured: the brain mask (else QSM's support) eroded by :data:`QSM_EROSION_MM`."""
    from recon.mask import erode_mask

    support = brain if brain is not None else qsm != 0
    return erode_mask(np.asarray(support, dtype=bool), voxel_size, QSM_EROSION_MM)


def load_series_inputs(tissue: Series, qsm: Series | None, brain_mask: Series | None) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], np.ndarray | None, np.ndarray | None]:
    labels, affine = load_volume(tissue)
    voxel_size = tuple(float(v) for v in voxel_size_from_affine(affine))
    qsm_arr = mask_arr = None
    if qsm is not None:
        qsm_arr = load_volume(qsm)[0].astype(np.float32)
        brain = load_volume(brain_mask)[0] > 0 if brain_mask is not None else None
        mask_arr = qsm_mask_of(brain, qsm_arr, voxel_size)
    return np.asarray(labels).astype(np.uint8), affine, voxel_size, qsm_arr, mask_arr  # type: ignore[return-value]


def load_inputs(inputs: ConsensusInputs) -> Loaded:
    tissue, affine, voxel_size, qsm, qsm_mask = load_series_inputs(inputs.tissue, inputs.qsm, inputs.brain_mask)
    masks = {name: load_revision_mask(r) for name, r in inputs.revisions.items()}
    votes = {name: votes_of(r.lesions, affine) for name, r in inputs.revisions.items()}
    return Loaded(masks, votes, tissue, affine, voxel_size, qsm, qsm_mask)


def analyse(
    loaded: Loaded,
    *,
    subject: str,
    params: Any,
    progress: Callable[[float, str], None] | None,
    propose_vessels: bool = True,
    per_rater: bool = False,
) -> Any:
    """:func:`qsmreview.lesions.pipeline.analyse_session` on the loaded inputs."""
    from qsmreview.lesions.pipeline import analyse_session

    return analyse_session(
        loaded.masks,
        loaded.tissue,
        loaded.voxel_size,
        qsm=loaded.qsm,
        qsm_mask=loaded.qsm_mask,
        votes=loaded.votes,
        subject=subject,
        params=params,
        propose_vessels=propose_vessels,
        per_rater=per_rater,
        progress=progress,
    )


def split_row(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A core lesion-table row as (model columns, extras)."""
    data = plain(dict(row))
    columns = {k: data.get(k) for k in ROW_COLUMNS}
    extras = {k: v for k, v in data.items() if k not in ROW_COLUMNS}
    return columns, extras
