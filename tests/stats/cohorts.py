"""Small constructed cohorts for the stats tests (rows built in code, seeded)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from qsmreview.stats.table import LesionRow


def whole(subject: str, kind: str, values: Iterable[float | None], start: int = 1) -> list[LesionRow]:
    """Whole wm or cortical lesions of one subject, numbered from ``start``."""
    return [LesionRow(subject, f"{kind}{start + i}", kind, kind, v) for i, v in enumerate(values)]


def mixed(subject: str, pairs: Iterable[tuple[float | None, float | None]], start: int = 1) -> list[LesionRow]:
    """Mixed lesions of one subject, (WM portion, cortical portion) each; None = not measured."""
    rows = []
    for i, (w, c) in enumerate(pairs):
        rows.append(LesionRow(subject, f"mixed{start + i}", "mixed", "wm", w))
        rows.append(LesionRow(subject, f"mixed{start + i}", "mixed", "cortical", c))
    return rows


def random_cohort(seed: int, patients: int = 12) -> tuple[list[LesionRow], dict[str, dict[str, list[float]]]]:
    """A cohort with patient effects; also returns values[subject][kind] for direct checks.

    Kinds: ``wm``, ``cortical``, ``mixed_wm``, ``mixed_cortical``. Some patients have no cortical
    or no mixed lesion.
    """
    rng = np.random.default_rng(seed)
    rows: list[LesionRow] = []
    values: dict[str, dict[str, list[float]]] = {}
    for p in range(patients):
        subject = f"P{p:02d}"
        u = rng.normal(0, 0.006)
        wm = list(0.012 + u + rng.normal(0, 0.012, rng.integers(1, 12)))
        cortical = list(-0.016 + u + rng.normal(0, 0.01, rng.integers(0, 5)))
        n_mixed = int(rng.integers(0, 3))
        mwm = list(0.01 + u + rng.normal(0, 0.015, n_mixed))
        mco = list(-0.008 + u + rng.normal(0, 0.012, n_mixed))
        rows += whole(subject, "wm", wm) + whole(subject, "cortical", cortical) + mixed(subject, zip(mwm, mco))
        values[subject] = {"wm": wm, "cortical": cortical, "mixed_wm": mwm, "mixed_cortical": mco}
    return rows, values


def pooled(values: Mapping[str, Mapping[str, Sequence[float]]], kind: str) -> np.ndarray:
    return np.array([v for s in values.values() for v in s[kind]])


def per_patient(values: Mapping[str, Mapping[str, Sequence[float]]], kind: str) -> np.ndarray:
    return np.array([np.mean(s[kind]) for s in values.values() if len(s[kind])])
