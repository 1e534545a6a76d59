"""Shared synthetic head for the processing tests.

An analytic head defined in world (RAS, mm) space, so it can be sampled on any grid and seen
through any rigid motion without interpolation: the truth is exact. Small (a scaled-down head,
semi-axes ~50-60 mm) so 64^3 grids at 2 mm hold it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Region codes of the synthetic head (not FAST codes; see TISSUE_OF_REGION).
BG, CSF, GM, WM, DEEP_GM, SKULL, SCALP = 0, 1, 2, 3, 4, 5, 6

#: FAST tissue class (0 bg, 1 CSF, 2 GM, 3 WM) of each region; skull and scalp are not brain.
TISSUE_OF_REGION = np.array([0, 1, 2, 3, 2, 0, 0], dtype=np.uint8)

#: Intensity per region for each contrast, roughly as at 7T.
CONTRASTS: dict[str, np.ndarray] = {
    # GRE magnitude, TE ~ 20 ms: CSF bright, iron-rich deep GM dark.
    "t2star": np.array([0.0, 1.0, 0.75, 0.6, 0.42, 0.05, 0.7]),
    # MPRAGE (CSF-nulled, i.e. the usual T1w): WM bright, CSF dark.
    "t1w": np.array([0.0, 0.12, 0.5, 0.85, 0.6, 0.05, 0.9]),
    # WM-nulled MPRAGE: WM dark, CSF bright.
    "wm_nulled": np.array([0.0, 0.8, 0.45, 0.08, 0.3, 0.05, 0.3]),
    # T2-FLAIR: CSF nulled, GM a little brighter than WM.
    "flair": np.array([0.0, 0.1, 0.65, 0.5, 0.55, 0.05, 0.6]),
}


def _ellipsoid(
    p: np.ndarray, centre: tuple[float, float, float], axes: tuple[float, float, float]
) -> np.ndarray:
    q = (p - np.asarray(centre)) / np.asarray(axes)
    return np.sum(q * q, axis=-1) <= 1.0


def head_regions(points_ras: np.ndarray) -> np.ndarray:
    """Region code (uint8) at each (..., 3) RAS point in mm."""
    p = np.asarray(points_ras, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    out = np.zeros(p.shape[:-1], dtype=np.uint8)

    def radius(ax: float, ay: float, az: float) -> np.ndarray:
        return np.sqrt((x / ax) ** 2 + ((y - 2.0) / ay) ** 2 + ((z + 4.0) / az) ** 2)

    r_brain = radius(44.0, 52.0, 40.0)
    theta = np.arctan2(np.hypot(x, y - 2.0), z + 4.0)
    phi = np.arctan2(y - 2.0, x)
    # Gyri: an angular pattern that moves the GM/WM border (asymmetric, so rotations are seen).
    folds = 0.07 * np.sin(6 * theta + 0.5) * np.cos(5 * phi + 0.3) + 0.03 * np.sin(9 * phi)

    out[radius(53.0, 61.0, 50.0) <= 1.0] = SCALP
    out[radius(50.0, 58.0, 47.0) <= 1.0] = SKULL
    out[radius(47.0, 55.0, 43.0) <= 1.0] = CSF
    out[r_brain <= 1.0 + 0.5 * folds] = GM
    out[r_brain <= 0.84 + folds] = WM
    for sx in (-1.0, 1.0):
        out[_ellipsoid(p, (sx * 9.0, -5.0, 0.0), (6.0, 9.0, 6.0))] = DEEP_GM  # thalamus
        out[_ellipsoid(p, (sx * 19.0, 7.0, -1.0), (3.5, 9.0, 6.0))] = DEEP_GM  # putamen
        out[_ellipsoid(p, (sx * 7.0, 8.0, 9.0), (3.5, 15.0, 5.0))] = CSF  # lateral ventricle
    out[_ellipsoid(p, (0.0, -2.0, -26.0), (7.0, 8.0, 10.0))] = WM  # brainstem-ish, off-centre
    return out


def grid_points(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """World (RAS) coordinates of the voxel centres, shape ``shape + (3,)``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def grid_affine(
    shape: tuple[int, int, int],
    voxel_size: tuple[float, float, float],
    rotation: np.ndarray | None = None,
    flip_x: bool = False,
) -> np.ndarray:
    """Affine of a grid centred on the world origin, optionally rotated and/or x-flipped."""
    r = np.eye(3) if rotation is None else rotation
    lin = r @ np.diag(voxel_size)
    if flip_x:
        lin = lin @ np.diag([-1.0, 1.0, 1.0])
    a = np.eye(4)
    a[:3, :3] = lin
    a[:3, 3] = -lin @ ((np.asarray(shape) - 1) / 2.0)
    return a


def rotation_xyz(deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix Rz @ Ry @ Rx for angles (degrees) about x, y and z."""
    ax, ay, az = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(deg: tuple[float, float, float], shift_mm: tuple[float, float, float]) -> np.ndarray:
    """4x4 rigid transform: rotation about the world origin, then a shift (mm)."""
    m = np.eye(4)
    m[:3, :3] = rotation_xyz(deg)
    m[:3, 3] = shift_mm
    return m


def render(
    shape: tuple[int, int, int],
    affine: np.ndarray,
    contrast: str,
    *,
    object_to_world: np.ndarray | None = None,
    noise: float = 0.02,
    blur_mm: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32) and region codes of the head seen on a grid.

    ``object_to_world`` moves the head: a grid point q shows the head at ``inv(object_to_world) q``.
    With ``object_to_world = M`` a point p of an unmoved image corresponds to ``M p`` here, i.e. M
    is the true fixed-to-moving transform. The image is blurred (Gaussian, ``blur_mm`` FWHM-ish
    sigma) to mimic the PSF and partial volume, then Gaussian noise (``noise`` of the WM..CSF
    scale) is added with a seeded generator.
    """
    pts = grid_points(shape, affine)
    if object_to_world is not None:
        inv = np.linalg.inv(object_to_world)
        pts = pts @ inv[:3, :3].T + inv[:3, 3]
    regions = head_regions(pts)
    img = CONTRASTS[contrast][regions]
    vs = np.linalg.norm(affine[:3, :3], axis=0)
    img = ndimage.gaussian_filter(img, sigma=blur_mm / vs)
    rng = np.random.default_rng(seed)
    img = img + noise * rng.standard_normal(img.shape)
    return img.astype(np.float32), regions
