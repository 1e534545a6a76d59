"""Command-line helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse


def matrix_size(text: str) -> tuple[int, int, int]:
    """Parse a matrix size such as ``96x96x48`` (an argparse ``type=``)."""
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a matrix size like 96x96x48")
    return shape  # type: ignore[return-value]
