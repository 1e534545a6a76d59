"""Noiseless synthetic susceptibility scenes with a known answer, for the inversion tests.

A brain-like ellipsoid (outer "grey matter" shell at 0 ppm, inner "white matter" at -0.03 ppm)
with spheres of known susceptibility. The local field is the forward dipole model (computed on a
zero-padded grid) converted to radians at the echo time, inside the mask only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon.constants import GAMMA_HZ_PER_T
from recon.dipole import forward_field


@dataclass
class Scene:
    field_rad: np.ndarray
    mask: np.ndarray
    magnitude: np.ndarray
    chi_ppm: np.ndarray
    labels: np.ndarray  # 0 = tissue, i = sphere i
    sphere_ppm: tuple[float, ...]
    reference: np.ndarray  # the 0 ppm outer shell
    voxel_size: tuple[float, float, float]
    rad_per_ppm: float


def make_scene(
    shape: tuple[int, int, int] = (64, 64, 32),
    voxel_size: tuple[float, float, float] = (0.9, 0.9, 1.6),
    *,
    b0: float = 7.0,
    te: float = 0.02,
    b0_dir: tuple[float, float, float] = (0.0, 0.0, 1.0),
    seed: int = 0,
) -> Scene:
    rng = np.random.default_rng(seed)
    centre = [(n - 1) / 2 for n in shape]
    g = np.meshgrid(*[(np.arange(n) - c) * v for n, c, v in zip(shape, centre, voxel_size)], indexing="ij")
    radii = [0.42 * n * v for n, v in zip(shape, voxel_size)]
    r = np.sqrt(sum((gi / ri) ** 2 for gi, ri in zip(g, radii)))
    mask = r < 1.0
    chi = np.zeros(shape, np.float32)
    mag = np.zeros(shape, np.float32)
    mag[mask] = 1.0
    inner = r < 0.6
    chi[inner] = -0.03
    mag[inner] = 1.3
    # (centre mm, radius mm, chi ppm): iron-rich, moderate, diamagnetic (calcification-like), faint.
    spheres = [((-8.0, -6.0, 0.0), 4.0, 0.15), ((8.0, 0.0, 3.0), 3.5, 0.08), ((0.0, 9.0, -4.0), 3.0, -0.05), ((2.0, -10.0, 4.0), 3.0, 0.04)]
    labels = np.zeros(shape, np.int16)
    for i, (c, rad, val) in enumerate(spheres, 1):
        s = (np.sqrt(sum((gi - ci) ** 2 for gi, ci in zip(g, c))) < rad) & mask
        chi[s] = val
        mag[s] = 0.6 + 0.1 * i
        labels[s] = i
    rad_per_ppm = 2 * np.pi * GAMMA_HZ_PER_T * b0 * te * 1e-6
    field = forward_field(chi, voxel_size, b0_dir, pad=16) * mask * rad_per_ppm
    mag *= (1.0 + 0.02 * rng.standard_normal(shape)).astype(np.float32)
    reference = mask & ~inner & (labels == 0)
    return Scene(
        field_rad=field.astype(np.float32),
        mask=mask,
        magnitude=mag.astype(np.float32),
        chi_ppm=chi,
        labels=labels,
        sphere_ppm=tuple(s[2] for s in spheres),
        reference=reference,
        voxel_size=voxel_size,
        rad_per_ppm=float(rad_per_ppm),
    )
