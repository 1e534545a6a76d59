"""Time and memory of registration and tissue classification at the study's real image sizes.

    .venv/bin/python benchmarks/registration.py            # 384x384x90 GRE, 256x256x176 T1
    .venv/bin/python benchmarks/registration.py --quick    # half-size grids, for a smoke run

The synthetic head of ``tests/processing`` is rendered on a GRE-like fixed grid (0.47 x 0.47 x
1 mm) and on a 1 mm T1 grid after a known rigid motion; the T1 (WM-nulled contrast) is registered
to the T2*-like magnitude and then classified into CSF/GM/WM. Each step runs in a fresh
subprocess so its peak RSS (``resource.getrusage``) is its own, not the data generator's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.processing import (  # noqa: E402
    CONTRASTS,
    TISSUE_OF_REGION,
    grid_affine,
    head_regions,
    rigid,
)

MOTION = rigid((4.0, -6.0, 5.0), (3.0, -4.0, 5.0))


def render_chunked(
    shape: tuple[int, int, int],
    affine: np.ndarray,
    contrast: str,
    object_to_world: np.ndarray | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Same as tests.processing.render but slab by slab, to keep memory low at 13 M voxels."""
    inv = np.eye(4) if object_to_world is None else np.linalg.inv(object_to_world)
    regions = np.empty(shape, dtype=np.uint8)
    ij = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), -1)
    for k in range(shape[2]):
        ijk = np.concatenate([ij, np.full(shape[:2] + (1,), k)], axis=-1).astype(np.float64)
        pts = ijk @ affine[:3, :3].T + affine[:3, 3]
        pts = pts @ inv[:3, :3].T + inv[:3, 3]
        regions[:, :, k] = head_regions(pts)
    image = CONTRASTS[contrast].astype(np.float32)[regions]
    vs = np.linalg.norm(affine[:3, :3], axis=0)
    image = ndimage.gaussian_filter(image, sigma=1.0 / vs)
    rng = np.random.default_rng(seed)
    image += np.float32(0.03) * rng.standard_normal(shape, dtype=np.float32)
    return image, regions


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _run_registration(folder: str, threads: int, queue: mp.Queue) -> None:
    from qsmreview.processing.registration import rigid_register, rotation_angle_deg

    d = Path(folder)
    fixed, moving = np.load(d / "fixed.npy"), np.load(d / "moving.npy")
    fa, ma = np.load(d / "fixed_affine.npy"), np.load(d / "moving_affine.npy")
    brain = np.load(d / "brain.npy")
    start = time.perf_counter()
    res = rigid_register(fixed, fa, moving, ma, fixed_mask=brain, threads=threads)
    elapsed = time.perf_counter() - start
    np.save(d / "t1_on_fixed.npy", res.resampled)
    ijk = np.argwhere(brain)[::50].astype(np.float64)
    pts = ijk @ fa[:3, :3].T + fa[:3, 3]
    est = pts @ res.fixed_to_moving[:3, :3].T + res.fixed_to_moving[:3, 3]
    true = pts @ MOTION[:3, :3].T + MOTION[:3, 3]
    err = np.linalg.norm(est - true, axis=1)
    rot = rotation_angle_deg(MOTION[:3, :3].T @ res.fixed_to_moving[:3, :3])
    queue.put(
        {
            "seconds": elapsed,
            "peak_rss_mb": _peak_rss_mb(),
            "mean_err_mm": float(err.mean()),
            "max_err_mm": float(err.max()),
            "rot_err_deg": rot,
            "iterations": res.iterations_per_level,
        }
    )


def _run_tissue(folder: str, queue: mp.Queue) -> None:
    from qsmreview.processing.tissue import classify_tissue

    d = Path(folder)
    t1 = np.load(d / "t1_on_fixed.npy")
    brain = np.load(d / "brain.npy")
    truth = np.load(d / "truth.npy")
    vs = tuple(np.linalg.norm(np.load(d / "fixed_affine.npy")[:3, :3], axis=0))
    start = time.perf_counter()
    labels = classify_tissue(t1, brain, vs, contrast="wm_nulled")
    elapsed = time.perf_counter() - start
    dice = {}
    for code, name in ((1, "CSF"), (2, "GM"), (3, "WM")):
        a, b = labels == code, truth == code
        dice[name] = float(2 * np.sum(a & b) / (a.sum() + b.sum()))
    queue.put({"seconds": elapsed, "peak_rss_mb": _peak_rss_mb(), "dice": dice})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half-size grids")
    parser.add_argument("--threads", type=int, default=1, help="ITK threads for registration")
    args = parser.parse_args()
    scale = 2 if args.quick else 1
    fixed_shape = (384 // scale, 384 // scale, 90 // scale)
    fixed_vs = (0.47 * scale, 0.47 * scale, 1.0 * scale)
    moving_shape = (256 // scale, 256 // scale, 176 // scale)
    moving_vs = (1.0 * scale,) * 3

    fa = grid_affine(fixed_shape, fixed_vs)
    ma = grid_affine(moving_shape, moving_vs)
    t0 = time.perf_counter()
    fixed, regions = render_chunked(fixed_shape, fa, "t2star", None, seed=1)
    moving, _ = render_chunked(moving_shape, ma, "wm_nulled", MOTION, seed=2)
    truth = TISSUE_OF_REGION[regions]
    print(f"fixed {fixed_shape} @ {fixed_vs} mm, moving {moving_shape} @ {moving_vs} mm")
    print(f"phantom rendered in {time.perf_counter() - t0:.1f} s")

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        d = Path(folder)
        for name, arr in {
            "fixed": fixed, "moving": moving, "fixed_affine": fa, "moving_affine": ma,
            "brain": truth > 0, "truth": truth,
        }.items():
            np.save(d / f"{name}.npy", arr)
        del fixed, moving, regions

        queue: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_run_registration, args=(folder, args.threads, queue))
        p.start()
        reg = queue.get()
        p.join()
        print(
            f"registration ({args.threads} thread{'s' if args.threads > 1 else ''}): "
            f"{reg['seconds']:.1f} s, peak RSS {reg['peak_rss_mb']:.0f} MB, "
            f"residual mean {reg['mean_err_mm']:.3f} mm / max {reg['max_err_mm']:.3f} mm, "
            f"rotation {reg['rot_err_deg']:.3f} deg, iterations {reg['iterations']}"
        )

        p = ctx.Process(target=_run_tissue, args=(folder, queue))
        p.start()
        tis = queue.get()
        p.join()
        dice = ", ".join(f"{k} {v:.3f}" for k, v in tis["dice"].items())
        print(
            f"tissue classification (WM-nulled T1 on the GRE grid): {tis['seconds']:.1f} s, "
            f"peak RSS {tis['peak_rss_mb']:.0f} MB, Dice {dice}"
        )


if __name__ == "__main__":
    main()
