"""Progress reporting: ``progress(fraction, stage)`` callables and small adaptors.

Every long :mod:`recon` function takes ``progress``: ``None`` or a callable
``progress(fraction: float, stage: str)`` with ``fraction`` in [0, 1] for the whole call. The web
app passes one that records the job's progress; the CLI passes :class:`TqdmProgress`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

Progress = Callable[[float, str], None]


def null_progress(fraction: float, stage: str) -> None:
    """A progress callable that ignores everything."""


def scaled(progress: Progress | None, start: float, stop: float, *, prefix: str | None = None) -> Progress:
    """Map a sub-step's [0, 1] onto ``[start, stop]`` of ``progress`` (no-op if ``None``).

    With ``prefix`` the stage text becomes ``"<prefix>: <stage>"`` (one tqdm bar per prefix).
    """
    if progress is None:
        return null_progress

    def report(fraction: float, stage: str) -> None:
        f = min(max(float(fraction), 0.0), 1.0)
        progress(start + (stop - start) * f, f"{prefix}: {stage}" if prefix else stage)

    return report


def monotonic(progress: Progress | None) -> Progress:
    """Clamp fractions to [0, 1] and never let them go backwards."""
    if progress is None:
        return null_progress
    done = [0.0]

    def report(fraction: float, stage: str) -> None:
        done[0] = max(done[0], min(max(float(fraction), 0.0), 1.0))
        progress(done[0], stage)

    return report


class TqdmProgress:
    """A progress callable drawing one tqdm bar per stage on stderr (for the CLI).

    A new bar starts whenever the stage's key changes: the text before ``":"`` if there is one
    (``"inversion: MEDI setup"`` and ``"inversion: MEDI solve"`` share one bar), else the first
    word. Each bar shows the overall percentage. Use as a context manager
    so the last bar is closed.
    """

    def __init__(self, *, file: IO[str] | None = None, disable: bool = False) -> None:
        self.file = file if file is not None else sys.stderr
        self.disable = disable
        self._bar: Any = None
        self._stage: str | None = None

    def __call__(self, fraction: float, stage: str) -> None:
        from tqdm import tqdm

        key = stage.split(":")[0] if ":" in stage else (stage.split(" ")[0] if stage else "")
        if self._bar is None or key != self._stage:
            self.close()
            self._stage = key
            self._bar = tqdm(total=100, desc=stage, file=self.file, disable=self.disable, leave=True,
                             bar_format="{desc:<32.32} {percentage:3.0f}%|{bar}| {elapsed}")
        self._bar.set_description_str(stage, refresh=False)
        target = round(100 * min(max(float(fraction), 0.0), 1.0))
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
