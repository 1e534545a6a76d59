"""Command line: ``python -m qsmreview.stats LESIONS.csv [--json] [--alpha 0.05]``.

Reads a lesion table (CSV or TSV, :mod:`qsmreview.stats.table`), runs
:func:`qsmreview.stats.analysis.analyse` and prints the result as text or JSON on stdout. A table
that breaks a rule (missing column, unknown lesion_type, a mixed row without portion, a wm/cortical
row with the other portion, a value that is not a finite number, a duplicate (subject, lesion,
portion), an unreadable file) or a bad option prints ``error: <message>`` naming the line and
column on stderr, nothing on stdout, and exits with status 2. ``--write-reference-cohort PATH``
writes the synthetic reference cohort (:func:`qsmreview.stats.synthetic.reference_cohort`) as CSV
instead. No Django.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

EXIT_INPUT = 2


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    from qsmreview.stats.analysis import REFERENCE_FAMILY, TEST_NAMES

    parser = argparse.ArgumentParser(
        prog="python -m qsmreview.stats",
        description="Group statistics of lesion relative susceptibility (ppm) from a lesion table (CSV or TSV).",
        epilog="Exit status: 0 done, 2 bad table or option (message on stderr). See docs/statistics.md.",
    )
    parser.add_argument("table", nargs="?", metavar="LESIONS.csv",
                        help="columns subject, lesion, lesion_type, portion, relative_susceptibility_ppm")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--alpha", type=_probability, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--confidence", type=_probability, default=0.95, help="confidence level (default 0.95)")
    parser.add_argument("--family", nargs="+", choices=TEST_NAMES, default=list(REFERENCE_FAMILY), metavar="TEST",
                        help="tests Bonferroni-corrected together (default: the reference study's six: "
                             + ", ".join(REFERENCE_FAMILY) + f"; choices: {', '.join(TEST_NAMES)})")
    parser.add_argument("--model-portions", action="store_true",
                        help="also put the mixed lesions' WM and cortical portions in the mixed model")
    parser.add_argument("--write-reference-cohort", metavar="OUT.csv",
                        help="write the synthetic reference cohort as CSV and exit (no analysis)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --write-reference-cohort (default 0)")
    return parser


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    from qsmreview.stats.table import LesionTableError, format_table, read_table

    if args.write_reference_cohort:
        from qsmreview.stats.synthetic import reference_cohort

        try:
            _write_atomically(Path(args.write_reference_cohort), format_table(reference_cohort(args.seed)))
        except OSError as exc:
            print(f"error: {args.write_reference_cohort}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            return EXIT_INPUT
        print(f"wrote {args.write_reference_cohort}", file=sys.stderr)
        return 0
    if args.table is None:
        parser.print_usage(sys.stderr)
        print("error: give LESIONS.csv (or --write-reference-cohort OUT.csv)", file=sys.stderr)
        return EXIT_INPUT

    from qsmreview.stats.analysis import analyse
    from qsmreview.stats.report import render_json, render_text

    try:
        table = read_table(args.table)
        result = analyse(table, alpha=args.alpha, confidence=args.confidence, family=args.family,
                         model_portions=args.model_portions)
    except (LesionTableError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    sys.stdout.write(render_json(result) if args.json else render_text(result))
    return 0
