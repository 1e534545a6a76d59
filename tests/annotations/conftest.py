"""Fixtures of the annotation tests: a session with a stored T2* magnitude on the test grid, an
assignment of it to ``rater``, and masks on that grid built voxel by voxel.

The test grid (``tests.fixtures.nifti``) is 16 x 20 x 8 voxels of 0.5 x 0.5 x 1 mm: voxel
(i, j, k) is centred at (0.5 i - 4, 0.5 j - 5, k - 4) mm, and one voxel is 0.25 mm^3.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from tests.api.world import make_series
from tests.fixtures.nifti import AFFINE, SHAPE


@pytest.fixture(autouse=True)
def _fresh_media_root(media_root):
    return media_root


@pytest.fixture
def mag(session):
    """The session's current T2* magnitude (the grid every mask is drawn on)."""
    return make_series(session, "t2star_mag")


@pytest.fixture
def assignment(session, rater, admin, mag):
    from qsmreview.annotations.services import assignment_create

    return assignment_create(by=admin, session=session, rater=rater)


def world_mm(i: int, j: int, k: int) -> list[float]:
    """The world position (mm) of voxel (i, j, k)'s centre on the test grid."""
    return [0.5 * i - 4.0, 0.5 * j - 5.0, k - 4.0]


def mask_array(*voxels: tuple[int, int, int], shape=SHAPE, value: int = 1, dtype=np.uint8) -> np.ndarray:
    data = np.zeros(shape, dtype=dtype)
    for v in voxels:
        data[v] = value
    return data


def nifti_of(data: np.ndarray, affine=AFFINE, *, gz: bool = True) -> bytes:
    raw = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64)).to_bytes()
    return gzip.compress(raw, mtime=0) if gz else raw


def mask_bytes(*voxels: tuple[int, int, int], **kwargs) -> bytes:
    """A .nii.gz mask on the test grid with ``voxels`` set to 1."""
    return nifti_of(mask_array(*voxels, **kwargs))
