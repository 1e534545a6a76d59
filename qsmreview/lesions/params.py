"""The study's consensus, classification, reference-ROI and agreement settings, in one object.

Every rule of :mod:`qsmreview.lesions` reads its numbers from :class:`ConsensusParams`; the
defaults are the study protocol's (docs/consensus.md). The object is frozen and round-trips
through :meth:`ConsensusParams.as_dict` / :meth:`ConsensusParams.from_dict` (JSON-friendly), which
validates every value and names the one it refuses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qsmreview.lesions.components import CONNECTIVITY
from qsmreview.lesions.errors import LesionInputError


@dataclass(frozen=True)
class ConsensusParams:
    """Settings of one consensus analysis (defaults: the study protocol).

    Attributes
    ----------
    majority : int or None
        Raters needed for a lesion and for a voxel of it; None = a majority of the raters given,
        ``n // 2 + 1`` (2 of 3, 3 of 4 or 5).
    connectivity : int
        Voxel connectivity of a lesion: 6 (face neighbours) only, as the raters' viewer, the
        stored lesion tables and the MSSEG evaluation (anima) use. Stated, not tunable.
    min_lesion_diameter_mm : float
        A consensus lesion whose volume is below that of a sphere of this diameter is listed
        (status ``"too_small"``), not counted.
    cortical_fraction_cortical : float
        A lesion whose share of cortex GM / (GM + WM) is >= this is cortical.
    cortical_fraction_wm : float
        ... <= this is white matter; in between it is mixed.
    reference_max_distance_vox : float
        Reference voxels lie within this in-plane distance (voxels) of the lesion on its central
        slice.
    reference_gap_vox : float
        Voxels within this distance (voxels, 3-D) of any lesion or rater's mark are left out of
        every reference ROI (partial volume and an uncertain boundary).
    reference_min_voxels : int
        A reference ROI with fewer voxels is flagged ``"small"`` (and still measured).
    agreement_alpha : float
        MSSEG detection: a reference lesion is detected when more than this share of its voxels
        is covered by the tested segmentation.
    agreement_beta : float
        MSSEG: a covering component with more than this share of its voxels outside every
        reference lesion disqualifies the detection ...
    agreement_gamma : float
        ... when it is among the largest overlaps that together cover this share of the lesion's
        covered voxels.
    agreement_min_volume_mm3 : float
        MSSEG: components of at most this volume (mm^3) are ignored by the detection scores
        (animaSegPerfAnalyzer ``-v``, default 3 mm^3).
    """

    majority: int | None = None
    connectivity: int = CONNECTIVITY
    min_lesion_diameter_mm: float = 2.0
    cortical_fraction_cortical: float = 0.75
    cortical_fraction_wm: float = 0.25
    reference_max_distance_vox: float = 10.0
    reference_gap_vox: float = 2.0
    reference_min_voxels: int = 20
    agreement_alpha: float = 0.10
    agreement_beta: float = 0.70
    agreement_gamma: float = 0.65
    agreement_min_volume_mm3: float = 3.0

    def __post_init__(self) -> None:
        _validate(self)

    def majority_of(self, n_raters: int) -> int:
        """Raters needed out of ``n_raters``: :attr:`majority`, or ``n_raters // 2 + 1``.

        Raises
        ------
        LesionInputError
            Fewer than two raters, or a fixed majority larger than the number of raters.
        """
        n = int(n_raters)
        if n < 2:
            raise LesionInputError(f"a consensus needs at least 2 raters, got {n}")
        if self.majority is None:
            return n // 2 + 1
        if self.majority > n:
            raise LesionInputError(f"majority {self.majority} is more than the {n} raters given")
        return self.majority

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name (JSON-friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ConsensusParams:
        """Settings from a mapping (missing keys keep their defaults).

        Raises
        ------
        LesionInputError
            An unknown key or a value out of range; the message names it.
        """
        if not isinstance(values, Mapping):
            raise LesionInputError("consensus settings must be a mapping of name to value")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise LesionInputError(f"unknown consensus setting(s): {', '.join(map(str, unknown))}")
        return cls(**dict(values))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise LesionInputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LesionInputError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _share(name: str, value: Any, *, open_low: bool = False) -> float:
    v = _number(name, value)
    if not (0.0 < v <= 1.0 if open_low else 0.0 <= v <= 1.0):
        raise LesionInputError(f"{name} must be between 0 and 1, got {value!r}")
    return v


def _validate(p: ConsensusParams) -> None:
    if p.majority is not None and _whole("majority", p.majority) < 1:
        raise LesionInputError(f"majority must be at least 1 (or None for a majority of the raters), got {p.majority!r}")
    if _whole("connectivity", p.connectivity) != CONNECTIVITY:
        raise LesionInputError(f"connectivity must be {CONNECTIVITY} (face neighbours), got {p.connectivity!r}")
    if _number("min_lesion_diameter_mm", p.min_lesion_diameter_mm) < 0:
        raise LesionInputError(f"min_lesion_diameter_mm must be >= 0 mm, got {p.min_lesion_diameter_mm!r}")
    wm = _share("cortical_fraction_wm", p.cortical_fraction_wm)
    cortical = _share("cortical_fraction_cortical", p.cortical_fraction_cortical)
    if not wm < cortical:
        raise LesionInputError(
            f"cortical_fraction_wm ({wm}) must be below cortical_fraction_cortical ({cortical})"
        )
    if _number("reference_max_distance_vox", p.reference_max_distance_vox) <= 0:
        raise LesionInputError(f"reference_max_distance_vox must be > 0, got {p.reference_max_distance_vox!r}")
    gap = _number("reference_gap_vox", p.reference_gap_vox)
    if gap < 0 or gap >= p.reference_max_distance_vox:
        raise LesionInputError(
            f"reference_gap_vox must be >= 0 and below reference_max_distance_vox, got {p.reference_gap_vox!r}"
        )
    if _whole("reference_min_voxels", p.reference_min_voxels) < 1:
        raise LesionInputError(f"reference_min_voxels must be at least 1, got {p.reference_min_voxels!r}")
    _share("agreement_alpha", p.agreement_alpha)
    _share("agreement_beta", p.agreement_beta)
    _share("agreement_gamma", p.agreement_gamma, open_low=True)
    if _number("agreement_min_volume_mm3", p.agreement_min_volume_mm3) < 0:
        raise LesionInputError(f"agreement_min_volume_mm3 must be >= 0, got {p.agreement_min_volume_mm3!r}")
