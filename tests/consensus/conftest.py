"""A session rated by three raters on a grid worked by hand, for the consensus tests.

The grid is 32 x 32 x 16 voxels of 1 mm (identity affine: voxel (i, j, k) is at (i, j, k) mm).
The brain mask is the box [2:30, 2:30, 2:14]; eroded by 2.5 mm (the QSM mask) it is
[4:28, 4:28, 4:12]: a voxel is kept when its distance to the nearest outside voxel is more than
2.5 mm, and index 4 is 3 mm from the outside voxel at index 1 (index 3 is 2 mm).
Tissue is white matter (3) everywhere in the brain. QSM is 0.02 ppm in the brain, 0.10 ppm in
lesion A and 0.05 ppm in lesion B.

- Lesion A, the cube [10:13, 10:13, 6:9] (27 voxels, 27 mm^3): all three raters; rater3 also
  marks the voxel (13, 10, 6), which only one rater marks, so it is not consensus.
- Lesion B, the cube [18:21, 18:21, 6:9] (27 voxels): rater1 and rater2 (2 of 3, a majority).
- Candidate C, [10:12, 20:22, 6:8] (8 voxels): rater2 alone (rejected).

The minimum lesion is a 2 mm sphere (4.19 mm^3), so A and B count.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pytest

GRID = (32, 32, 16)
AFFINE = np.eye(4)
LESION_A = (slice(10, 13), slice(10, 13), slice(6, 9))
LESION_B = (slice(18, 21), slice(18, 21), slice(6, 9))
CANDIDATE_C = (slice(10, 12), slice(20, 22), slice(6, 8))
EXTRA_VOXEL = (13, 10, 6)
BRAIN = (slice(2, 30), slice(2, 30), slice(2, 14))


@pytest.fixture(autouse=True)
def _fresh_media_root(request):
    """Stored files under the test's own tmp_path; worker tests keep the shared MEDIA_ROOT (the
    worker process reads it)."""
    if request.node.get_closest_marker("worker") is None:
        return request.getfixturevalue("media_root")
    return None


def volume(value: float = 0.0, dtype=np.float32) -> np.ndarray:
    return np.full(GRID, value, dtype=dtype)


def brain() -> np.ndarray:
    data = volume(0, np.uint8)
    data[BRAIN] = 1
    return data


def qsm_data() -> np.ndarray:
    chi = volume(0.0)
    chi[BRAIN] = 0.02
    chi[LESION_A] = 0.10
    chi[LESION_B] = 0.05
    return chi


def tissue() -> np.ndarray:
    return brain() * np.uint8(3)


def rater_mask(name: str) -> np.ndarray:
    mask = volume(0, np.uint8)
    mask[LESION_A] = 1
    if name in ("rater1", "rater2"):
        mask[LESION_B] = 1
    if name == "rater2":
        mask[CANDIDATE_C] = 1
    if name == "rater3":
        mask[EXTRA_VOXEL] = 1
    return mask


def mask_bytes(mask: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(mask.astype(np.uint8), AFFINE).to_bytes(), mtime=0)


def store(session, admin, kind: str, data: np.ndarray, **extra):
    from qsmreview.studies.services.series import series_create_derived

    return series_create_derived(by=admin, session=session, kind=kind, data=data, affine=AFFINE, provenance={"source": "test"}, **extra)


@dataclass
class Rated:
    session: object
    admin: object
    raters: dict
    assignments: dict
    tissue: object
    qsm: object
    brain_mask: object


def save_and_submit(rater, assignment, mask: np.ndarray, *, vote: str = "wm"):
    from qsmreview.annotations.services import assignment_submit, revision_create
    from qsmreview.lesions.components import lesion_table

    anchors = [
        {"number": row["number"], "anchor_mm": row["anchor_mm"], "vote": vote, "confidence": 3, "note": ""}
        for row in lesion_table(mask.astype(bool), AFFINE, anchors=[], min_diameter_mm=0.0, next_number=1)
    ]
    revision = revision_create(by=rater, assignment=assignment, mask_bytes=mask_bytes(mask), parent=None, lesions=anchors)
    assignment_submit(by=rater, assignment=assignment, revision=revision)
    return revision


@pytest.fixture
def inputs_session(session, admin):
    """The session with magnitude, brain mask, tissue and QSM on the grid, nobody assigned yet."""
    store(session, admin, "t2star_mag", volume(100.0))
    mask = store(session, admin, "brain_mask", brain())
    labels = store(session, admin, "tissue", tissue())
    chi = store(session, admin, "qsm", qsm_data())
    return session, labels, chi, mask


@pytest.fixture
def assigned(inputs_session, admin, rater, rater2, rater3):
    from qsmreview.annotations.services import assignment_create

    session = inputs_session[0]
    raters = {"rater1": rater, "rater2": rater2, "rater3": rater3}
    return {name: assignment_create(by=admin, session=session, rater=user) for name, user in raters.items()}


@pytest.fixture
def rated(inputs_session, assigned, admin, rater, rater2, rater3) -> Rated:
    """Every rater submitted (which queued a consensus job: not run here)."""
    session, labels, chi, mask = inputs_session
    raters = {"rater1": rater, "rater2": rater2, "rater3": rater3}
    for name, user in raters.items():
        save_and_submit(user, assigned[name], rater_mask(name))
    return Rated(session, admin, raters, assigned, labels, chi, mask)
