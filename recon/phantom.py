"""A synthetic 7T head with known susceptibility, MS lesions and matching multi-contrast images.

:func:`make_phantom` builds a head in air on any grid: scalp, skull, a frontal air sinus, CSF
(outer rim, sulci, lateral ventricles), a folded cortical ribbon, white matter, deep grey nuclei,
veins and MS lesions (white matter, cortical and mixed). The gradient-echo data follow the
physics the pipeline inverts:

- the field (ppm) is the dipole forward model (:func:`recon.dipole.forward_field`, zero padded by
  :func:`field_pad`) of the whole susceptibility distribution ``chi_ppm`` *relative to air*, so
  the head sits in infinite air and the air/tissue interfaces (head surface, sinus) produce a
  realistic background field. The air and bone steps are blurred by a Gaussian of one voxel
  (partial volume) outside the intracranial region only; ``chi_ppm`` holds that blur, so it is
  exactly the susceptibility that made the data, and inside the brain it holds the tissue values;
- the complex signal of echo ``k`` is ``M(TE_k) exp(i (2 pi gamma B0 TE_k field 1e-6 + offset))``
  with ``M`` proton density times T2* decay per tissue, times the intra-voxel dephasing factor
  ``prod_axes |sinc(dphi_axis / 2 pi)|`` of the local phase gradient: where the phase changes by
  ~2 pi per voxel (next to air) the signal is lost, as in real data, instead of leaving phase that
  no unwrapper could recover;
- complex Gaussian noise (so Rician magnitude, and phase noise ~ 1 / SNR) is added; the phase is
  the angle of the noisy signal, wrapped to [-pi, pi).

The anatomy is defined in coordinates normalised to the head's semi-axes (the head fills ~88 % of
the field of view), so any grid gives a complete head; lesion radii are in mm but never below
~2 voxels so they stay resolvable on coarse test grids.

Susceptibility values (ppm, relative to CSF = 0): white matter -0.03, cortex +0.02, caudate
+0.07, putamen +0.06, globus pallidus +0.18, thalamus +0.02, veins +0.40, skull -2.0, air +9.4
(air is paramagnetic at +0.36 ppm SI against water at -9.05 ppm SI). Lesions: white matter
+0.015..+0.04 relative to WM, cortical -0.012..-0.03 relative to cortex, mixed lesions both
(WM portion positive, cortical portion negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.ndimage as ndi

from recon.constants import GAMMA_HZ_PER_T
from recon.dipole import _unit, forward_field
from recon.errors import ReconInputError

#: FSL FAST tissue codes used by ``Phantom.tissue``.
BACKGROUND, CSF, GM, WM = 0, 1, 2, 3

CHI_AIR = 9.4
CHI_SKULL = -2.0
CHI_WM = -0.03
CHI_GM = 0.02
CHI_VEIN = 0.40
#: (name, centre, semi-axes, chi ppm, T2* s, proton density); centres/semi-axes normalised, x
#: mirrored for both hemispheres. Axes are RAS: x right, y anterior, z superior.
DEEP_GREY = (
    ("thalamus", (0.12, -0.16, 0.02), (0.08, 0.12, 0.12), 0.02, 0.027, 0.80),
    ("caudate", (0.21, 0.24, 0.14), (0.055, 0.09, 0.12), 0.07, 0.024, 0.82),
    ("putamen", (0.36, 0.05, 0.0), (0.06, 0.16, 0.14), 0.06, 0.022, 0.82),
    ("globus_pallidus", (0.28, 0.02, -0.02), (0.04, 0.09, 0.10), 0.18, 0.014, 0.78),
)


@dataclass
class Phantom:
    """A synthetic head and its gradient-echo data (see :func:`make_phantom`).

    Attributes
    ----------
    chi_ppm : (nx, ny, nz) float32
        True susceptibility in ppm relative to CSF (air +9.4, skull -2.0): exactly what the
        forward model used, including the partial-volume blur of the air and bone steps outside
        the intracranial region (so values between those of air, scalp and skull there).
    magnitude : float32, (nx, ny, nz) for one echo or (nx, ny, nz, n_echo)
        Noisy magnitude (arbitrary units; brain mean ~1 at the first echo).
    phase : float32, same shape as ``magnitude``
        Noisy phase in radians, wrapped to [-pi, pi).
    field_ppm : (nx, ny, nz) float32
        The noiseless total field (background + local) in ppm of B0.
    tissue : (nx, ny, nz) uint8
        FSL FAST codes: 0 background (and non-brain), 1 CSF, 2 GM (cortex and deep nuclei), 3 WM.
        Lesions keep the class of the tissue they sit in.
    lesions : (nx, ny, nz) int16
        0 none, 1..N lesion id.
    lesion_types : dict[int, str]
        ``"wm"``, ``"cortical"`` or ``"mixed"`` per lesion id.
    deep_grey : (nx, ny, nz) uint8
        0 none, 1 thalamus, 2 caudate, 3 putamen, 4 globus pallidus (both hemispheres).
    veins : (nx, ny, nz) bool
    brain_mask : (nx, ny, nz) bool
        Intracranial brain region: parenchyma and CSF inside the skull.
    t1_wmn, t1_csfn, flair : (nx, ny, nz) float32
        White-matter-nulled T1, CSF-nulled T1 (MPRAGE-like) and FLAIR-like images (lesions bright
        on FLAIR), with noise.
    affine : (4, 4) float64
        RAS voxel-to-world affine; its column norms are ``voxel_size`` and its rotation maps
        ``b0_dir`` onto world z, so ``b0_direction_from_affine(affine) == b0_dir``.
    te : tuple of float
        Echo times in s.
    b0 : float
        Field strength in T.
    voxel_size : tuple of float
        mm per array axis.
    b0_dir : tuple of float
        Unit B0 direction in voxel coordinates.
    phase_offset : float
        Echo-independent phase offset in radians added to every echo.
    """

    chi_ppm: np.ndarray
    magnitude: np.ndarray
    phase: np.ndarray
    field_ppm: np.ndarray
    tissue: np.ndarray
    lesions: np.ndarray
    lesion_types: dict[int, str]
    deep_grey: np.ndarray
    veins: np.ndarray
    brain_mask: np.ndarray
    t1_wmn: np.ndarray
    t1_csfn: np.ndarray
    flair: np.ndarray
    affine: np.ndarray
    te: tuple[float, ...]
    b0: float
    voxel_size: tuple[float, float, float]
    b0_dir: tuple[float, float, float]
    phase_offset: float
    lesion_contrast_ppm: dict[int, dict[str, float]] = field(default_factory=dict)


def _rotation_taking(b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Proper rotation R with ``R @ b = z`` (unit vectors; Rodrigues' formula)."""
    v = np.cross(b, z)
    c = float(np.dot(b, z))
    s = float(np.linalg.norm(v))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = v / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def phantom_affine(shape: Sequence[int], voxel_size: Sequence[float], b0_dir: Sequence[float]) -> np.ndarray:
    """RAS affine with the given voxel size whose B0 (world z) is ``b0_dir`` in voxel axes.

    The grid centre maps to the world origin.
    """
    b = _unit(b0_dir)
    r = _rotation_taking(b, np.array([0.0, 0.0, 1.0]))
    a = np.eye(4)
    a[:3, :3] = r @ np.diag(np.asarray(voxel_size, dtype=np.float64))
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    a[:3, 3] = -a[:3, :3] @ centre
    return a


def _tube(
    out: np.ndarray, coords: Sequence[np.ndarray], points: np.ndarray, radius_mm: float
) -> None:
    """Set ``out`` True within ``radius_mm`` of the polyline ``points`` (mm, (n, 3))."""
    axes = [c.ravel() for c in coords]  # 1-D mm coordinates per axis
    for p, q in zip(points[:-1], points[1:]):
        lo = np.minimum(p, q) - radius_mm
        hi = np.maximum(p, q) + radius_mm
        idx = [np.nonzero((a >= lo[i]) & (a <= hi[i]))[0] for i, a in enumerate(axes)]
        if any(i.size == 0 for i in idx):
            continue
        sl = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)
        g = np.meshgrid(*[axes[i][sl[i]] for i in range(3)], indexing="ij")
        d = q - p
        t = ((g[0] - p[0]) * d[0] + (g[1] - p[1]) * d[1] + (g[2] - p[2]) * d[2]) / max(float(d @ d), 1e-12)
        t = np.clip(t, 0.0, 1.0)
        dist2 = sum((g[i] - (p[i] + t * d[i])) ** 2 for i in range(3))
        out[sl] |= dist2 <= radius_mm**2


def _check_grid(shape: Sequence[int], voxel_size: Sequence[float]) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    shp = tuple(int(n) for n in shape)
    if len(shp) != 3 or min(shp) < 16:
        raise ReconInputError(f"phantom shape must be three ints >= 16, got {tuple(shape)!r}")
    vs = np.asarray(voxel_size, dtype=np.float64)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise ReconInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}")
    return shp, (float(vs[0]), float(vs[1]), float(vs[2]))  # type: ignore[return-value]


def field_pad(shape: Sequence[int]) -> list[int]:
    """Zero padding per side of the phantom's forward model (the ``pad`` of
    :func:`recon.dipole.forward_field`): the grid grows by about half, to a fast FFT length."""
    return [(int(scipy.fft.next_fast_len(n + n // 2)) - n + 1) // 2 for n in shape]


def make_phantom(
    shape: Sequence[int] = (384, 384, 90),
    voxel_size: Sequence[float] = (0.47, 0.47, 1.0),
    *,
    b0: float = 7.0,
    te: float | Sequence[float] = (0.0177,),
    b0_dir: Sequence[float] = (0.0, 0.0, 1.0),
    snr: float = 50.0,
    seed: int = 0,
    phase_offset: float = 0.0,
    n_lesions: tuple[int, int, int] = (6, 4, 3),
) -> Phantom:
    """Build the synthetic head and its multi-echo gradient-echo data.

    Parameters
    ----------
    shape : (3,) ints
        Grid (nx, ny, nz); the default matches a 7T 0.47 x 0.47 x 1 mm axial slab.
    voxel_size : (3,) floats
        mm per array axis (anisotropic sizes are kept per axis).
    b0 : float
        Field strength in T.
    te : float or sequence of float
        Echo time(s) in s. One echo gives 3-D magnitude/phase, several give 4-D (echo last).
    b0_dir : (3,) floats
        B0 direction in voxel coordinates (oblique allowed); the affine is rotated to match.
    snr : float
        Mean brain magnitude at the first echo over the noise standard deviation (per channel).
    seed : int
        Seed of every random choice (lesion placement, contrasts, noise): same seed, same phantom.
    phase_offset : float
        Echo-independent phase offset in radians (receiver/coil phase).
    n_lesions : (3,) ints
        Numbers of white matter, cortical and mixed lesions wanted. Fewer are placed if the
        brain has no room for them (a small grid); ``lesion_types`` says what was placed.

    Returns
    -------
    Phantom

    Raises
    ------
    ReconInputError
        On a grid smaller than 16 voxels per axis, bad voxel size, non-positive B0, TE or SNR.
    """
    shp, vs = _check_grid(shape, voxel_size)
    tes = (float(te),) if np.isscalar(te) else tuple(float(t) for t in te)  # type: ignore[arg-type]
    if not tes or any(not (np.isfinite(t) and t > 0) for t in tes):
        raise ReconInputError(f"echo times must be positive seconds, got {te!r}")
    if not (np.isfinite(b0) and b0 > 0):
        raise ReconInputError(f"b0 must be a positive field strength in T, got {b0!r}")
    if not (np.isfinite(snr) and snr > 0):
        raise ReconInputError(f"snr must be positive, got {snr!r}")
    bdir = _unit(b0_dir)
    rng = np.random.default_rng(seed)

    # ---------------------------------------------------------------- coordinates
    fov = np.asarray(shp) * np.asarray(vs)
    semi = 0.44 * fov  # head semi-axes, mm
    coords_mm = [((np.arange(n) - (n - 1) / 2) * v).reshape([-1 if a == i else 1 for a in range(3)])
                 for i, (n, v) in enumerate(zip(shp, vs))]
    u = [c / s for c, s in zip(coords_mm, semi)]  # normalised coordinates
    rho = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.arccos(np.clip(u[2] / np.maximum(rho, 1e-6), -1, 1)).astype(np.float32)
    phi = np.arctan2(u[1], u[0]) * np.ones_like(rho)

    def ellipsoid(centre: Sequence[float], axes: Sequence[float]) -> np.ndarray:
        return sum(((u[i] - centre[i]) / axes[i]) ** 2 for i in range(3)) <= 1.0  # type: ignore[return-value]

    chi = np.full(shp, CHI_AIR, dtype=np.float32)
    t2s = np.full(shp, 1e-3, dtype=np.float32)
    pd = np.zeros(shp, dtype=np.float32)
    tissue = np.zeros(shp, dtype=np.uint8)

    head = rho <= 1.0
    chi[head], t2s[head], pd[head] = 0.0, 0.028, 0.75  # scalp / soft tissue
    skull = head & (rho <= 0.94)
    chi[skull], t2s[skull], pd[skull] = CHI_SKULL, 0.0015, 0.08
    # Frontal sinus: air low in front of the brain; the brain keeps clear of it (bone between).
    sinus_c = (0.0, 0.74, -0.42)
    sinus = ellipsoid(sinus_c, (0.13, 0.09, 0.14)) & head
    chi[sinus], t2s[sinus], pd[sinus] = CHI_AIR, 1e-3, 0.0
    near_sinus = ellipsoid(sinus_c, (0.40, 0.33, 0.40))
    intracranial = (rho <= 0.87) & ~near_sinus
    chi[intracranial], t2s[intracranial], pd[intracranial] = 0.0, 0.080, 1.0  # CSF
    tissue[intracranial] = CSF

    # Folded cortex: the pial and grey/white surfaces are modulated by sinusoids of the angles;
    # narrow sulci (CSF) cut into the ribbon where the folding function peaks.
    fold = (np.sin(11 * phi + 1.5 * np.sin(3 * theta)) * np.sin(9 * theta + 0.6 * np.cos(4 * phi))).astype(np.float32)
    pial = 0.83 - 0.12 * np.clip((fold - 0.45) / 0.55, 0.0, 1.0)
    gw = 0.65 - 0.07 * fold
    brain = intracranial & (rho <= pial)
    chi[brain], t2s[brain], pd[brain] = CHI_GM, 0.033, 0.86
    tissue[brain] = GM
    cortex = brain.copy()
    wm = brain & (rho <= gw)
    chi[wm], t2s[wm], pd[wm] = CHI_WM, 0.026, 0.72
    tissue[wm] = WM
    cortex &= ~wm

    deep = np.zeros(shp, dtype=np.uint8)
    for k, (_, c, ax, val, t2, p) in enumerate(DEEP_GREY, 1):
        for sx in (-1.0, 1.0):
            m = ellipsoid((sx * c[0], c[1], c[2]), ax) & brain
            chi[m], t2s[m], pd[m] = val, t2, p
            tissue[m] = GM
            deep[m] = k
    ventricles = (ellipsoid((-0.12, 0.02, 0.16), (0.065, 0.30, 0.12))
                  | ellipsoid((0.12, 0.02, 0.16), (0.065, 0.30, 0.12))) & brain
    chi[ventricles], t2s[ventricles], pd[ventricles] = 0.0, 0.080, 1.0
    tissue[ventricles] = CSF
    deep[ventricles] = 0
    cortex &= tissue == GM
    cortex &= deep == 0

    # Veins: superior sagittal sinus along the midline arc, a straight sinus, cortical veins.
    veins = np.zeros(shp, dtype=bool)
    vr = max(1.2, 0.9 * min(vs))  # tube radius, mm (at least about one voxel across)
    a = np.linspace(-1.1, 1.3, 24)
    sss = np.stack([0 * a, 0.845 * np.sin(a), 0.845 * np.cos(a)], axis=1) * semi
    _tube(veins, coords_mm, sss, 1.4 * vr)
    straight = np.array([[0.0, -0.18, 0.22], [0.0, -0.45, 0.42], [0.0, -0.70, 0.45]]) * semi
    _tube(veins, coords_mm, straight, vr)
    for az, el in ((0.7, 0.9), (2.4, 1.1), (-0.9, 1.4), (-2.3, 0.8)):
        s = np.linspace(-0.25, 0.25, 8)
        th, ph = el + s, az + 0.4 * s
        pts = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1) * 0.815
        _tube(veins, coords_mm, pts * semi, vr)
    veins &= intracranial
    chi[veins], t2s[veins], pd[veins] = CHI_VEIN, 0.008, 0.9

    # ---------------------------------------------------------------- lesions
    lesions = np.zeros(shp, dtype=np.int16)
    lesion_types: dict[int, str] = {}
    contrast: dict[int, dict[str, float]] = {}
    geo = float(np.prod(vs) ** (1 / 3))
    wm_clean = wm & (deep == 0) & ~veins
    d_wm = ndi.distance_transform_edt(wm_clean, sampling=vs)
    d_ctx = ndi.distance_transform_edt(cortex & ~veins, sampling=vs)
    d_vein = ndi.distance_transform_edt(~veins, sampling=vs)
    d_deep = ndi.distance_transform_edt(deep == 0, sampling=vs)
    d_vent = ndi.distance_transform_edt(~ventricles, sampling=vs)
    taken = np.zeros(shp, dtype=bool)  # lesions grown by a margin: no two lesions share a ring
    n_wm, n_ctx, n_mix = (int(n) for n in n_lesions)
    plan = ["wm"] * n_wm + ["cortical"] * n_ctx + ["mixed"] * n_mix
    grid_idx = np.indices(shp, sparse=True)
    for kind in plan:
        r = max(2.0, float(rng.uniform(2.0, 2.8)) * geo, 2.0 * max(vs[0], vs[1]))
        clear = (d_vein > r + 3 * geo) & (d_deep > r + 3 * geo) & (d_vent > r + 2 * geo) & ~taken
        if kind == "wm":
            cand = clear & (d_wm > r + 2.0 * geo)
        elif kind == "cortical":
            cand = clear & (d_ctx >= 0.5 * min(r, float(d_ctx.max()))) & ~wm
        else:
            cand = clear & wm_clean & (d_wm <= 1.01 * max(vs)) & (d_wm > 0)
        idx = np.flatnonzero(cand)
        if idx.size == 0:
            continue
        c = np.unravel_index(int(idx[rng.integers(idx.size)]), shp)
        ball = sum(((grid_idx[i] - c[i]) * vs[i]) ** 2 for i in range(3)) <= r * r
        lid = len(lesion_types) + 1
        parts: dict[str, float] = {}
        if kind in ("wm", "mixed"):
            part = ball & wm_clean
            delta = float(rng.uniform(0.015, 0.04))
            chi[part] += delta
            t2s[part] *= 1.35
            pd[part] *= 1.05
            lesions[part] = lid
            parts["wm"] = delta
        if kind in ("cortical", "mixed"):
            part = ball & cortex & ~veins
            delta = float(rng.uniform(-0.03, -0.012))
            chi[part] += delta
            t2s[part] *= 1.2
            pd[part] *= 1.03
            lesions[part] = lid
            parts["gm"] = delta
        if not (lesions == lid).any():
            continue
        lesion_types[lid] = kind
        contrast[lid] = parts
        margin = r + 4.0 * geo
        taken |= sum(((grid_idx[i] - c[i]) * vs[i]) ** 2 for i in range(3)) <= margin * margin
    brain_mask = intracranial.copy()

    # ---------------------------------------------------------------- field and signal
    pad = field_pad(shp)
    # The large air/bone steps are blurred by about a voxel (partial volume) before the forward
    # model; the small tissue contrasts stay sharp. A sharp 9.4 ppm step puts energy at the
    # Nyquist frequencies, whose sampled dipole response (for an oblique B0 especially) rings
    # through the brain non-physically. The blur stays outside the intracranial region: its tails
    # would otherwise put bone and air susceptibility into the brain, where the truth does not
    # have them. What the forward model uses is exactly what is returned as the truth (chi_ppm).
    base = np.where(head & ~sinus, np.float32(-CHI_AIR), np.float32(0.0))
    base[skull & ~intracranial & ~sinus] = CHI_SKULL - CHI_AIR
    chi_out = ndi.gaussian_filter(base, sigma=1.0)
    chi_out += np.float32(CHI_AIR)
    chi_out[intracranial] = chi[intracranial]  # (outside it, chi is air, scalp or bone: no detail)
    del base
    field_ppm = forward_field(chi_out - np.float32(CHI_AIR), vs, bdir, pad=pad)
    field_ppm -= np.float32(np.median(field_ppm[brain]))  # centre frequency on the brain (shim)
    bias = (1.0 + 0.15 * np.cos(1.3 * u[0] + 0.4) * np.cos(1.1 * u[1] - 0.3) * np.cos(0.9 * u[2])).astype(np.float32)
    sigma = None
    mags, phases = [], []
    for t in tes:
        rad = (2 * np.pi * GAMMA_HZ_PER_T * b0 * t * 1e-6) * field_ppm.astype(np.float64)
        dephase = np.ones(shp, dtype=np.float64)
        for ax in range(3):
            dephase *= np.abs(np.sinc(np.gradient(rad, axis=ax) / (2 * np.pi)))
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            m = pd * np.exp(-t / t2s) * bias * dephase
        m = m.astype(np.float32)
        if sigma is None:
            sigma = float(m[brain].mean()) / snr
            scale = 1.0 / float(m[brain].mean())
        sig = m * np.exp(1j * (rad + phase_offset))
        sig = sig + sigma * (rng.standard_normal(shp) + 1j * rng.standard_normal(shp))
        sig *= scale
        mags.append(np.abs(sig).astype(np.float32))
        ph = np.angle(sig).astype(np.float32)
        ph[ph >= np.pi] = -np.pi  # [-pi, pi)
        phases.append(ph)
    magnitude = mags[0] if len(tes) == 1 else np.stack(mags, axis=-1)
    phase = phases[0] if len(tes) == 1 else np.stack(phases, axis=-1)

    # ---------------------------------------------------------------- structural contrasts
    def contrast_image(values: dict[int, float], lesion_value: float, scalp: float, noise: float) -> np.ndarray:
        img = np.zeros(shp, dtype=np.float32)
        img[head] = scalp
        img[skull] = 0.05
        for code, v in values.items():
            img[intracranial & (tissue == code)] = v
        img[sinus] = 0.0
        if lesion_value >= 0:
            img[lesions > 0] = lesion_value
        img *= bias
        img += noise * rng.standard_normal(shp).astype(np.float32)
        return np.abs(img)

    deep_any = deep > 0
    t1_wmn = contrast_image({CSF: 0.45, GM: 0.85, WM: 0.05}, 0.55, 0.6, 0.02)
    t1_wmn[deep_any] = 0.6 * bias[deep_any]
    t1_csfn = contrast_image({CSF: 0.05, GM: 0.55, WM: 0.85}, 0.40, 0.9, 0.02)
    t1_csfn[deep_any] = 0.65 * bias[deep_any]
    flair = contrast_image({CSF: 0.05, GM: 0.60, WM: 0.45}, 1.0, 0.5, 0.02)

    return Phantom(
        chi_ppm=chi_out,
        magnitude=magnitude,
        phase=phase,
        field_ppm=field_ppm,
        tissue=np.where(intracranial, tissue, BACKGROUND).astype(np.uint8),
        lesions=lesions,
        lesion_types=lesion_types,
        deep_grey=deep,
        veins=veins,
        brain_mask=brain_mask,
        t1_wmn=t1_wmn,
        t1_csfn=t1_csfn,
        flair=flair,
        affine=phantom_affine(shp, vs, bdir),
        te=tes,
        b0=float(b0),
        voxel_size=vs,
        b0_dir=(float(bdir[0]), float(bdir[1]), float(bdir[2])),
        phase_offset=float(phase_offset),
        lesion_contrast_ppm=contrast,
    )


def local_field(phantom: Phantom, mask: np.ndarray, *, snr: float | None = None, seed: int = 0) -> np.ndarray:
    """The field of the phantom's susceptibility inside ``mask``, in radians at the first echo.

    This is the local field a perfect background removal would return: the dipole forward model
    (zero padded as :func:`make_phantom` pads) of ``chi_ppm`` inside ``mask``, zero outside it.
    It lets a dipole inversion be checked apart from background removal, whose error along the
    mask's edge dominates the pipeline's (see docs/medi.md).

    Parameters
    ----------
    phantom : Phantom
        From :func:`make_phantom`.
    mask : (nx, ny, nz) bool
        The region whose sources count as local (e.g. the eroded brain mask).
    snr : float, optional
        Add the phase noise of a gradient echo at this SNR: Gaussian with standard deviation
        ``1 / (snr * magnitude / mean brain magnitude)`` radians (magnitude of the first echo,
        floored at 5 % of the mean).
    seed : int
        Seed of that noise.

    Returns
    -------
    (nx, ny, nz) float32
        Radians at ``phantom.te[0]``; zero outside ``mask``.
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != phantom.chi_ppm.shape:
        raise ReconInputError(f"mask has shape {m.shape}, expected {phantom.chi_ppm.shape}")
    shp = m.shape
    ppm = forward_field(
        np.where(m, phantom.chi_ppm, 0.0).astype(np.float32), phantom.voxel_size, phantom.b0_dir, pad=field_pad(shp)
    )
    rad = ppm.astype(np.float64) * (2 * np.pi * GAMMA_HZ_PER_T * phantom.b0 * phantom.te[0] * 1e-6)
    if snr is not None:
        if not (np.isfinite(snr) and snr > 0):
            raise ReconInputError(f"snr must be positive, got {snr!r}")
        mag = phantom.magnitude if phantom.magnitude.ndim == 3 else phantom.magnitude[..., 0]
        rel = np.maximum(mag / mag[phantom.brain_mask].mean(), 0.05)
        rad = rad + np.random.default_rng(seed).standard_normal(shp) / (snr * rel)
    return np.where(m, rad, 0.0).astype(np.float32)

