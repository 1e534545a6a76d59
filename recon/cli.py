"""Command line: ``python -m recon`` / ``qsm-recon``. Loads NIfTI, calls recon, saves NIfTI.

Every bad input (mismatched grids or affines, NaNs, phase out of range, TE count mismatch, empty
mask, unreadable file) prints ``error: <message>`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine
from recon.io import load_echoes, load_nifti, same_grid, save_nifti, write_phantom
from recon.progress import TqdmProgress

EXIT_INPUT = 2


def _load_mask(path: str | None, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray | None:
    if path is None:
        return None
    data, a = load_nifti(path)
    same_grid(shape, affine, data.shape, a, f"mask {path}")
    if data.ndim != 3:
        raise ReconInputError(f"mask {path}: expected a 3-D image, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ReconInputError(f"mask {path}: contains NaN or infinite values")
    m = data > 0.5
    if not m.any():
        raise ReconInputError(f"mask {path} is empty")
    return m


def _pairs(magnitude: Sequence[str], phase: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mag, affine = load_echoes(magnitude)
    ph, paff = load_echoes(phase)
    same_grid(mag.shape, affine, ph.shape, paff, "phase")
    if mag.shape != ph.shape:
        raise ReconInputError(f"phase has {ph.shape} voxels/echoes, magnitude {mag.shape}")
    if not np.all(np.isfinite(mag)):
        raise ReconInputError("magnitude contains NaN or infinite values")
    return mag, ph, affine


def _b0_dir(args: argparse.Namespace, affine: np.ndarray) -> tuple[float, float, float]:
    if getattr(args, "b0_dir", None):
        return tuple(args.b0_dir)  # type: ignore[return-value]
    return b0_direction_from_affine(affine)


def _cmd_qsm(args: argparse.Namespace) -> None:
    from recon.pipeline import qsm

    mag, ph, affine = _pairs(args.magnitude, args.phase)
    mask = _load_mask(args.mask, mag.shape, affine)
    with TqdmProgress(disable=args.quiet) as bar:
        res = qsm(
            mag,
            ph,
            args.te if len(args.te) > 1 else args.te[0],
            args.b0,
            voxel_size_from_affine(affine),
            affine=affine,
            b0_dir=args.b0_dir,
            mask=mask,
            erosion_mm=args.erosion_mm,
            background=args.background,
            solver=args.solver,
            lam=args.lam,
            edge_percentage=args.edge_percentage,
            csf_zero_reference=args.csf_zero_reference,
            smv=args.smv,
            progress=bar,
        )
    save_nifti(res.chi_ppm, affine, args.out)
    if args.out_mask:
        save_nifti(res.eroded_mask, affine, args.out_mask, dtype=np.uint8)
    if args.out_local:
        save_nifti(res.local_field / res.te_ref, affine, args.out_local)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items())
    print(f"wrote {args.out} (chi in ppm; {timings})", file=sys.stderr)


def _cmd_mask(args: argparse.Namespace) -> None:
    from recon.mask import brain_mask, erode_mask

    mag, affine = load_echoes(args.magnitude)
    first = mag if mag.ndim == 3 else mag[..., 0]
    vs = voxel_size_from_affine(affine)
    m = brain_mask(first, vs, threshold=args.threshold)
    if args.erosion_mm:
        m = erode_mask(m, vs, args.erosion_mm)
    save_nifti(m, affine, args.out, dtype=np.uint8)


def _cmd_unwrap(args: argparse.Namespace) -> None:
    from recon.phase import phase_to_radians
    from recon.unwrap import laplacian_unwrap

    ph, affine = load_nifti(args.phase)
    if ph.ndim != 3:
        raise ReconInputError(f"unwrap takes one 3-D echo, got shape {ph.shape}")
    mask = _load_mask(args.mask, ph.shape, affine)
    rad, _ = phase_to_radians(ph)
    save_nifti(laplacian_unwrap(rad, voxel_size_from_affine(affine), mask=mask), affine, args.out)


def _cmd_fit(args: argparse.Namespace) -> None:
    from recon.echofit import fit_echoes
    from recon.phase import phase_to_radians

    mag, ph, affine = _pairs(args.magnitude, args.phase)
    mask = _load_mask(args.mask, mag.shape, affine)
    assert mask is not None
    rad, _ = phase_to_radians(ph)
    with TqdmProgress(disable=args.quiet) as bar:
        fit = fit_echoes(rad, mask, voxel_size_from_affine(affine), te=args.te, magnitude=mag, progress=bar)
    save_nifti(fit.frequency, affine, args.out)
    if args.out_noise:
        save_nifti(fit.noise, affine, args.out_noise)
    if args.out_offset:
        save_nifti(fit.offset, affine, args.out_offset)


def _cmd_bgremove(args: argparse.Namespace) -> None:
    from recon.bgremove import pdf, vsharp
    from recon.mask import erode_mask

    field, affine = load_nifti(args.field)
    if field.ndim != 3:
        raise ReconInputError(f"field must be 3-D, got shape {field.shape}")
    mask = _load_mask(args.mask, field.shape, affine)
    assert mask is not None
    vs = voxel_size_from_affine(affine)
    mask = erode_mask(mask, vs, args.erosion_mm)
    if not mask.any():
        raise ReconInputError(f"eroding the mask by {args.erosion_mm} mm leaves nothing")
    with TqdmProgress(disable=args.quiet) as bar:
        if args.method == "pdf":
            local = pdf(field.astype(np.float32), mask, vs, b0_dir=_b0_dir(args, affine), progress=bar)
        else:
            local, mask = vsharp(field.astype(np.float32), mask, vs, progress=bar)
    save_nifti(local, affine, args.out)
    if args.out_mask:
        save_nifti(mask, affine, args.out_mask, dtype=np.uint8)


def _cmd_invert(args: argparse.Namespace) -> None:
    from recon.constants import GAMMA_HZ_PER_T
    from recon.inversion import medi

    field, affine = load_nifti(args.field)
    if field.ndim != 3:
        raise ReconInputError(f"field must be 3-D, got shape {field.shape}")
    mask = _load_mask(args.mask, field.shape, affine)
    mag = None
    if args.magnitude:
        mag, maff = load_echoes([args.magnitude])
        same_grid(field.shape, affine, mag.shape, maff, "magnitude")
        mag = mag if mag.ndim == 3 else mag[..., 0]
    if not (args.te_ref > 0 and args.b0 > 0):
        raise ReconInputError("--te-ref and --b0 must be positive")
    with TqdmProgress(disable=args.quiet) as bar:
        res = medi(
            field.astype(np.float32) * np.float32(args.te_ref),
            mask,
            voxel_size_from_affine(affine),
            magnitude=mag,
            b0_dir=_b0_dir(args, affine),
            lam=args.lam,
            edge_percentage=args.edge_percentage,
            solver=args.solver,
            progress=bar,
        )
    save_nifti(res.chi / (2 * np.pi * GAMMA_HZ_PER_T * args.b0 * args.te_ref) * 1e6, affine, args.out)


def _cmd_phantom(args: argparse.Namespace) -> None:
    from recon.phantom import make_phantom

    p = make_phantom(
        tuple(args.shape),
        tuple(args.voxel),
        b0=args.b0,
        te=tuple(args.echoes),
        b0_dir=tuple(args.b0_dir) if args.b0_dir else (0.0, 0.0, 1.0),
        snr=args.snr,
        seed=args.seed,
        phase_offset=args.phase_offset,
    )
    files = write_phantom(p, args.out)
    print(f"wrote {len(files)} files to {args.out}", file=sys.stderr)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qsm-recon",
        description="MEDI quantitative susceptibility mapping (units: TE s, B0 T, voxel mm, chi ppm).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    q = sub.add_parser("qsm", help="whole pipeline: magnitude + phase -> chi (ppm)")
    q.add_argument("--magnitude", nargs="+", required=True, help="one 3-D file per echo, or one 4-D file")
    q.add_argument("--phase", nargs="+", required=True, help="same layout as --magnitude")
    q.add_argument("--te", type=float, nargs="+", action="extend", required=True, help="echo time(s) in s")
    q.add_argument("--b0", type=float, required=True, help="field strength in T")
    q.add_argument("--mask", help="brain mask (default: from the magnitude)")
    q.add_argument("--out", required=True, help="output chi NIfTI (ppm, float32)")
    q.add_argument("--out-mask", help="also write the eroded mask")
    q.add_argument("--out-local", help="also write the local field (rad/s)")
    q.add_argument("--solver", choices=("admm", "toolbox"), default="admm")
    q.add_argument("--background", choices=("pdf", "vsharp"), default="pdf")
    q.add_argument("--erosion-mm", type=float, default=2.5)
    q.add_argument("--lambda", dest="lam", type=float, default=1000.0)
    q.add_argument("--edge-percentage", type=float, default=0.9)
    q.add_argument("--b0-dir", type=float, nargs=3, metavar=("X", "Y", "Z"), help="B0 in voxel axes (default: from the affine)")
    q.add_argument("--csf-zero-reference", action="store_true", help="MEDI+0")
    q.add_argument("--smv", action="store_true", help="MEDI SMV preconditioning (5 mm)")
    _common(q)
    q.set_defaults(func=_cmd_qsm)

    m = sub.add_parser("mask", help="brain mask from the magnitude")
    m.add_argument("--magnitude", nargs="+", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--threshold", type=float, help="intensity threshold (default: Otsu)")
    m.add_argument("--erosion-mm", type=float, default=0.0)
    _common(m)
    m.set_defaults(func=_cmd_mask)

    u = sub.add_parser("unwrap", help="Laplacian unwrapping of one echo (rad)")
    u.add_argument("--phase", required=True)
    u.add_argument("--mask")
    u.add_argument("--out", required=True)
    _common(u)
    u.set_defaults(func=_cmd_unwrap)

    f = sub.add_parser("fit", help="unwrap echoes and fit the field frequency (rad/s)")
    f.add_argument("--magnitude", nargs="+", required=True)
    f.add_argument("--phase", nargs="+", required=True)
    f.add_argument("--te", type=float, nargs="+", action="extend", required=True)
    f.add_argument("--mask", required=True)
    f.add_argument("--out", required=True, help="field frequency, rad/s")
    f.add_argument("--out-noise", help="frequency standard error, rad/s")
    f.add_argument("--out-offset", help="phase offset, rad")
    _common(f)
    f.set_defaults(func=_cmd_fit)

    b = sub.add_parser("bgremove", help="background field removal (output in the input's unit)")
    b.add_argument("--field", required=True)
    b.add_argument("--mask", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--out-mask", help="also write the mask the local field is valid in")
    b.add_argument("--method", choices=("pdf", "vsharp"), default="pdf")
    b.add_argument("--erosion-mm", type=float, default=0.0)
    b.add_argument("--b0-dir", type=float, nargs=3, metavar=("X", "Y", "Z"))
    _common(b)
    b.set_defaults(func=_cmd_bgremove)

    i = sub.add_parser("invert", help="MEDI inversion of a local field in rad/s -> chi (ppm)")
    i.add_argument("--field", required=True, help="local field, rad/s")
    i.add_argument("--mask", required=True)
    i.add_argument("--magnitude")
    i.add_argument("--te-ref", type=float, required=True, help="s; field * te_ref is the field in rad MEDI sees")
    i.add_argument("--b0", type=float, required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--solver", choices=("admm", "toolbox"), default="admm")
    i.add_argument("--lambda", dest="lam", type=float, default=1000.0)
    i.add_argument("--edge-percentage", type=float, default=0.9)
    i.add_argument("--b0-dir", type=float, nargs=3, metavar=("X", "Y", "Z"))
    _common(i)
    i.set_defaults(func=_cmd_invert)

    p = sub.add_parser("phantom", help="write the synthetic head (NIfTI + JSON)")
    p.add_argument("--shape", type=int, nargs=3, default=(384, 384, 90), metavar=("X", "Y", "Z"))
    p.add_argument("--voxel", type=float, nargs=3, default=(0.47, 0.47, 1.0), metavar=("DX", "DY", "DZ"))
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--echoes", type=float, nargs="+", default=[0.0177], help="echo times in s")
    p.add_argument("--b0", type=float, default=7.0)
    p.add_argument("--snr", type=float, default=50.0)
    p.add_argument("--b0-dir", type=float, nargs=3, metavar=("X", "Y", "Z"))
    p.add_argument("--phase-offset", type=float, default=0.0)
    _common(p)
    p.set_defaults(func=_cmd_phantom)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "te") and args.te is not None and getattr(args, "command", "") in ("qsm", "fit"):
        # argparse "extend" + default None: a flat list of every --te given.
        args.te = [float(t) for t in args.te]
    if getattr(args, "out", None):
        Path(args.out).parent.mkdir(parents=True, exist_ok=True) if args.command != "phantom" else None
    try:
        args.func(args)
    except ReconInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
