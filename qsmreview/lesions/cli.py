"""Command line: ``python -m qsmreview.lesions consensus ...``. Loads NIfTI, runs the analysis,
writes the consensus, the reference ROIs and the lesion table.

    python -m qsmreview.lesions consensus --masks R1.nii.gz R2.nii.gz R3.nii.gz \\
        --tissue fast_seg.nii.gz [--qsm chi.nii.gz] [--qsm-mask mask_eroded.nii.gz] \\
        [--majority 2] [--subject MS001] --out results/

Every bad input (grids that differ in shape or affine, a mask that is not binary, tissue labels
other than the FAST codes 0-3, NaN in the QSM inside its mask, an unreadable file) prints
``error: <message>`` on stderr and exits with status 2, before anything is written. Progress
lines go to stderr. Rater names are the mask files' names without ``.nii``/``.nii.gz``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qsmreview.lesions.errors import LesionInputError

EXIT_INPUT = 2


def _rater_name(path: str, taken: set[str]) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    base, k = name or "rater", 2
    while name in taken:
        name = f"{base}-{k}"
        k += 1
    taken.add(name)
    return name


class _Lines:
    """Progress as lines on stderr: ``[ 40%] reference ROIs``, one per new stage."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.stage = ""

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.quiet and stage != self.stage:
            self.stage = stage
            print(f"[{100 * fraction:3.0f}%] {stage}", file=sys.stderr, flush=True)


def _cmd_consensus(args: argparse.Namespace) -> None:
    from qsmreview.lesions.io import load_nifti, same_grid, write_outputs
    from qsmreview.lesions.params import ConsensusParams
    from qsmreview.lesions.pipeline import analyse_session

    if len(args.masks) < 2:
        raise LesionInputError(f"--masks needs at least 2 raters' masks, got {len(args.masks)}")
    taken: set[str] = set()
    first = load_nifti(args.masks[0], "mask")
    masks = {_rater_name(args.masks[0], taken): first[0]}
    for path in args.masks[1:]:
        image = load_nifti(path, "mask")
        same_grid(first, image, f"mask {path}")
        masks[_rater_name(path, taken)] = image[0]
    tissue = load_nifti(args.tissue, "tissue")
    same_grid(first, tissue, f"tissue {args.tissue}")
    qsm = qsm_mask = None
    if args.qsm:
        image = load_nifti(args.qsm, "QSM")
        same_grid(first, image, f"QSM {args.qsm}")
        qsm = image[0].astype(np.float32)
    if args.qsm_mask:
        image = load_nifti(args.qsm_mask, "QSM mask")
        same_grid(first, image, f"QSM mask {args.qsm_mask}")
        qsm_mask = image[0]
    affine = first[1]
    voxel_size = tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    params = ConsensusParams(majority=args.majority)
    analysis = analyse_session(
        masks,
        tissue[0],
        voxel_size,  # type: ignore[arg-type]
        qsm=qsm,
        qsm_mask=qsm_mask,
        subject=args.subject,
        params=params,
        propose_vessels=False,
        progress=_Lines(args.quiet),
    )
    paths = write_outputs(analysis, affine, args.out)
    if not args.quiet:
        print(analysis.summary(), file=sys.stderr)
        print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qsmreview.lesions", description="Lesion consensus and measurements.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("consensus", help="consensus lesions, reference ROIs and the lesion table of one session")
    c.add_argument("--masks", nargs="+", required=True, help="the raters' binary masks (NIfTI), one per rater")
    c.add_argument("--tissue", required=True, help="FSL FAST labels 0-3 on the same grid")
    c.add_argument("--qsm", help="susceptibility map in ppm")
    c.add_argument("--qsm-mask", help="the eroded QSM mask (binary)")
    c.add_argument("--majority", type=int, default=None, help="raters needed (default: a majority, n // 2 + 1)")
    c.add_argument("--subject", default="", help="subject code written in every row")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(run=_cmd_consensus)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except LesionInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return 0
