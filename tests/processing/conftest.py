"""A session filled with a small synthetic head (recon.phantom), as an admin would upload it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage

#: Small enough for a worker to reconstruct in seconds, large enough for lesions and cortex.
SHAPE = (80, 80, 40)
VOXEL = (1.2, 1.2, 1.6)


@dataclass
class Misalignment:
    rotation_deg: tuple[float, float, float]
    translation_mm: tuple[float, float, float]


def rotation_matrix(rotation_deg) -> np.ndarray:
    ax, ay, az = np.deg2rad(rotation_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def misaligned_world_affine(affine: np.ndarray, mis: Misalignment) -> np.ndarray:
    """The affine of the same voxels after the head moved by a rigid transform in world space.

    The moving image keeps the phantom's voxels but its world placement is rotated about the
    volume centre and shifted: a registration must find the inverse of this motion.
    """
    shape_centre = np.array([SHAPE[0] - 1, SHAPE[1] - 1, SHAPE[2] - 1]) / 2.0
    centre = affine[:3, :3] @ shape_centre + affine[:3, 3]
    motion = np.eye(4)
    motion[:3, :3] = rotation_matrix(mis.rotation_deg)
    motion[:3, 3] = centre - motion[:3, :3] @ centre + np.asarray(mis.translation_mm)
    return motion @ affine


@pytest.fixture(scope="session")
def phantom():
    from recon.phantom import make_phantom

    return make_phantom(SHAPE, VOXEL, seed=3, snr=80.0)


def store(session, kind, data, affine, **extra):
    from qsmreview.studies.services.series import series_create_derived

    return series_create_derived(
        session=session,
        kind=kind,
        data=np.asarray(data),
        affine=affine,
        provenance={"source": "test phantom"},
        **extra,
    )


@pytest.fixture
def phantom_session(session, phantom):
    """The ``session`` fixture holding the phantom's T2* magnitude and phase."""
    store(session, "t2star_mag", phantom.magnitude, phantom.affine, echo_times_s=list(phantom.te))
    store(session, "t2star_phase", phantom.phase, phantom.affine, echo_times_s=list(phantom.te))
    return session


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def eroded(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    return ndimage.binary_erosion(mask, iterations=iterations)
