"""Synthetic rater annotations made from a lesion truth, with the disagreements real raters show.

Three raters draw the same truth lesions (a label map, e.g. the phantom's ``lesion-ids``):

- **A** (conservative) misses exactly one truth lesion, the smallest one that is not mixed (small
  lesions are the ones raters miss), and draws some boundaries a voxel inside the truth;
- **B** (generous) adds exactly one false positive, a small blob in tissue away from every lesion,
  and draws some boundaries a voxel outside;
- **C** draws every lesion, some a voxel outside and some a voxel inside.

On the first mixed lesion the class votes differ: A "mixed", B "cortical", C "wm"; every other
lesion gets its true class. Boundaries change by adding (or removing) a random 40 % of the
lesion's one-voxel outer (inner) shell under 6-connectivity, so a boundary moves by a voxel in
places, never by a whole shell (shell voxels a removal cuts off go with it); which lesions change is drawn per rater, except that the largest
lesion always changes (A shrinks it, B and C grow it, C also shrinks the second largest). A change is dropped when it would empty or split the lesion, or
bring it within one voxel (26-neighbourhood) of another lesion, so every rater's lesions stay the
truth's separate 6-connected components and overlap exactly one truth lesion each (the false
positive none).

Deterministic: the same truth and seed give the same masks. No Django, no file I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from qsmreview.lesions.components import STRUCTURE

#: Names of the three synthetic raters, in order.
RATERS = ("A", "B", "C")
#: Per rater: probabilities of (keep, grow, shrink) for each lesion's boundary.
BOUNDARY_CHANGES: dict[str, tuple[float, float, float]] = {
    "A": (0.5, 0.1, 0.4),
    "B": (0.5, 0.4, 0.1),
    "C": (0.4, 0.3, 0.3),
}
#: Per rater: the changes always made to its largest, second largest, ... drawn lesions.
FORCED_CHANGES: dict[str, tuple[str, ...]] = {"A": ("shrink",), "B": ("grow",), "C": ("grow", "shrink")}
#: Class votes on the first mixed lesion, per rater.
MIXED_VOTES = {"A": "mixed", "B": "cortical", "C": "wm"}
#: Fraction of a boundary shell that a grow or shrink changes.
SHELL_FRACTION = 0.4
#: Radius of the false positive's blob (voxels) and its least distance from any lesion (voxels).
FALSE_POSITIVE_RADIUS = 1.5
FALSE_POSITIVE_CLEARANCE = 4.0

_NEIGHBOURHOOD_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class RaterLesion:
    """One lesion (6-connected component) of a synthetic rater's mask.

    Attributes
    ----------
    anchor_voxel : (i, j, k) of a voxel inside the component (the one nearest its centroid).
    truth_id : the truth lesion it overlaps, or None for a false positive.
    vote : "wm", "cortical" or "mixed".
    confidence : 1 (unsure) .. 5 (certain).
    """

    anchor_voxel: tuple[int, int, int]
    truth_id: int | None
    vote: str
    confidence: int


@dataclass(frozen=True)
class SyntheticRating:
    """One synthetic rater's annotation.

    Attributes
    ----------
    rater : "A", "B" or "C".
    mask : (X, Y, Z) uint8, 1 = lesion.
    lesions : one entry per 6-connected component of ``mask``.
    missed : truth ids the rater did not draw.
    false_positives : components overlapping no truth lesion.
    """

    rater: str
    mask: np.ndarray
    lesions: tuple[RaterLesion, ...]
    missed: tuple[int, ...]
    false_positives: int


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    labels, n = ndimage.label(mask, structure=STRUCTURE)
    return labels, int(n)


def _largest(region: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``region`` (empty when ``region`` is)."""
    labels, n = _components(region)
    if n <= 1:
        return region
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(counts.argmax())


def _one_component(region: np.ndarray) -> bool:
    return region.any() and _components(region)[1] == 1


def _changed(lesion: np.ndarray, op: str, rng: np.random.Generator, *, forbidden: np.ndarray) -> np.ndarray:
    """``lesion`` with half its outer shell added ("grow") or inner shell removed ("shrink");
    the lesion itself when the change would empty or split it or touch ``forbidden``."""
    if op == "grow":
        shell = ndimage.binary_dilation(lesion, structure=STRUCTURE) & ~lesion & ~forbidden
        picked = shell & (rng.random(lesion.shape) < SHELL_FRACTION)
        out = lesion | picked
    elif op == "shrink":
        shell = lesion & ~ndimage.binary_erosion(lesion, structure=STRUCTURE)
        picked = shell & (rng.random(lesion.shape) < SHELL_FRACTION)
        # Shell voxels cut off from the body by the removal go too (a rater's boundary has no
        # islands); anything deeper than the shell stays.
        out = _largest(lesion & ~picked)
        if (lesion & ~out & ~shell).any():
            return lesion
    else:
        return lesion
    return out if _one_component(out) else lesion


def _anchor(component: np.ndarray) -> tuple[int, int, int]:
    """The voxel of ``component`` nearest its centroid (ties: the first in C order)."""
    idx = np.argwhere(component)
    centroid = idx.mean(axis=0)
    best = idx[int(np.argmin(((idx - centroid) ** 2).sum(axis=1)))]
    return int(best[0]), int(best[1]), int(best[2])


def _false_positive(
    occupied: np.ndarray, allowed: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A ball of :data:`FALSE_POSITIVE_RADIUS` voxels inside ``allowed``, at least
    :data:`FALSE_POSITIVE_CLEARANCE` voxels from every ``occupied`` voxel."""
    away = ndimage.distance_transform_edt(~occupied) >= FALSE_POSITIVE_CLEARANCE + FALSE_POSITIVE_RADIUS
    inside = ndimage.distance_transform_edt(allowed) > FALSE_POSITIVE_RADIUS + 1
    candidates = np.flatnonzero(away & inside)
    if candidates.size == 0:
        raise ValueError("no room for a false positive: every allowed voxel is near a lesion")
    centre = np.unravel_index(int(candidates[rng.integers(candidates.size)]), occupied.shape)
    grid = np.indices(occupied.shape, sparse=True)
    ball = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= FALSE_POSITIVE_RADIUS**2
    return np.asarray(ball, dtype=bool)


def synthetic_ratings(
    truth: np.ndarray,
    lesion_types: Mapping[int, str],
    *,
    allowed: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[SyntheticRating, ...]:
    """Three raters' masks and votes for the truth lesions (see the module docstring).

    Parameters
    ----------
    truth : (X, Y, Z) integer array
        0 = no lesion, k = truth lesion k (as the phantom's ``lesion-ids``). Not modified.
    lesion_types : mapping
        Truth id -> "wm", "cortical" or "mixed" (string or int keys).
    allowed : (X, Y, Z) bool array, optional
        Where the false positive may go (e.g. the brain mask); default the whole grid.
    seed : int
        Seed of every random choice.

    Returns
    -------
    tuple of SyntheticRating
        Raters A, B and C.

    Raises
    ------
    ValueError
        Not 3-D, no truth lesion, a lesion id without a type, fewer than two non-mixed lesions
        (rater A must still draw one), or no room for the false positive.
    """
    ids = np.asarray(truth)
    if ids.ndim != 3:
        raise ValueError(f"truth must be 3-D, got shape {ids.shape}")
    types = {int(k): str(v) for k, v in lesion_types.items()}
    present = [int(k) for k in np.unique(ids) if k != 0]
    if not present:
        raise ValueError("the truth has no lesion")
    missing_type = [k for k in present if k not in types]
    if missing_type:
        raise ValueError(f"truth lesions without a type: {missing_type}")
    sizes = {k: int((ids == k).sum()) for k in present}
    plain = [k for k in present if types[k] != "mixed"]
    if len(plain) < 2:
        raise ValueError("need at least two lesions that are not mixed")
    missed_by_a = min(plain, key=lambda k: (sizes[k], k))
    mixed = [k for k in present if types[k] == "mixed"]
    disputed = mixed[0] if mixed else None
    region = np.ones(ids.shape, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    truth_any = ids != 0

    ratings = []
    for index, rater in enumerate(RATERS):
        rng = np.random.default_rng([seed, index])
        mask = np.zeros(ids.shape, dtype=bool)
        drawn = [k for k in present if not (rater == "A" and k == missed_by_a)]
        ops = list(rng.choice(["keep", "grow", "shrink"], size=len(drawn), p=BOUNDARY_CHANGES[rater]))
        # Whatever the draw, each rater's largest lesions show the rater's habit.
        by_size = sorted(range(len(drawn)), key=lambda i: (-sizes[drawn[i]], drawn[i]))
        for i, op in zip(by_size, FORCED_CHANGES[rater]):
            ops[i] = op
        boxes = ndimage.find_objects(ids)
        for k, op in zip(drawn, ops):
            # Work in the lesion's box grown by 3 voxels: a grow adds 1, the gap needs 1 more.
            box = tuple(
                slice(max(b.start - 3, 0), min(b.stop + 3, n)) for b, n in zip(boxes[k - 1], ids.shape)
            )
            # Keep a voxel's gap to every other lesion, drawn or not.
            others = (truth_any[box] & (ids[box] != k)) | mask[box]
            forbidden = ndimage.binary_dilation(others, structure=_NEIGHBOURHOOD_26)
            mask[box] |= _changed(ids[box] == k, str(op), rng, forbidden=forbidden)
        if rater == "B":
            mask |= _false_positive(truth_any | mask, region, rng)

        labels, n = _components(mask)
        lesions = []
        for c in range(1, n + 1):
            component = labels == c
            overlap = ids[component]
            overlap = overlap[overlap != 0]
            truth_id = int(np.bincount(overlap).argmax()) if overlap.size else None
            if truth_id is None:
                vote, confidence = "wm", 2
            elif truth_id == disputed:
                vote, confidence = MIXED_VOTES[rater], 3
            else:
                vote, confidence = types[truth_id], 4
            lesions.append(RaterLesion(_anchor(component), truth_id, vote, confidence))
        lesions.sort(key=lambda les: (les.truth_id is None, les.truth_id or 0, les.anchor_voxel))
        ratings.append(
            SyntheticRating(
                rater=rater,
                mask=mask.astype(np.uint8),
                lesions=tuple(lesions),
                missed=tuple(k for k in present if k not in drawn),
                false_positives=sum(1 for les in lesions if les.truth_id is None),
            )
        )
    return tuple(ratings)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A & B| / (|A| + |B|) of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total
