"""Consensus lesions of several raters' binary masks, by majority of lesions and of voxels.

The rules (defaults in :class:`~qsmreview.lesions.params.ConsensusParams`):

1. **Candidates** are the connected components of the union of the raters' masks under
   **6-connectivity** (face neighbours; :data:`~qsmreview.lesions.components.STRUCTURE`). Lesions
   of different raters that touch by a face are one candidate.
2. A rater **marked** a candidate when any of the rater's voxels lie in it. A candidate marked by
   fewer than the majority (``n // 2 + 1`` raters unless set) is ``"rejected"``.
3. Within a candidate marked by a majority, the consensus lesion is the voxels marked by at least
   the majority of raters. If none is (the raters agree a lesion is there but not where),
   the candidate goes to ``"adjudication"``: a person decides; nothing is guessed.
4. A consensus lesion whose volume is below that of a sphere of ``min_lesion_diameter_mm`` is
   listed as ``"too_small"`` and not counted.
5. Every other candidate is a ``"lesion"`` with an id 1..n in the order of the candidates (first
   voxel in C order). Its majority voxels may form more than one 6-connected piece (the raters'
   boundaries disagree across a thin neck); they stay **one lesion**: the raters marked one
   lesion, the split is an artefact of the vote. ``n_pieces`` records it.

Class votes are given per rater as anchors ``((i, j, k), vote)``; a vote applies to the candidate
holding its voxel (:func:`component_votes`). No Django, no file I/O.

References
----------
Commowick O, Istace A, Kain M, et al. Objective evaluation of multiple sclerosis lesion
segmentation using a data management and processing infrastructure. Sci Rep 2018;8:13650
(6-connected lesions; the MSSEG-2016 consensus of seven raters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from qsmreview.lesions.components import STRUCTURE, VOTES, label_lesions, sphere_volume_mm3
from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams

#: Status of a candidate.
LESION, REJECTED, TOO_SMALL, ADJUDICATION = "lesion", "rejected", "too_small", "adjudication"
STATUSES = (LESION, REJECTED, TOO_SMALL, ADJUDICATION)

Vote = tuple[Sequence[int], str]


@dataclass(frozen=True)
class Consensus:
    """The consensus of one session.

    Attributes
    ----------
    candidate_labels : (X, Y, Z) int32
        0 outside the union of the masks, 1..m for the candidates.
    lesion_labels : (X, Y, Z) int32
        0 elsewhere, 1..n for the counted lesions (status ``"lesion"``), their majority voxels.
    candidates : list of dict
        One per candidate, in candidate order: ``candidate``, ``status``, ``lesion`` (id or
        None), ``raters`` (names that marked it), ``n_raters``, ``union_voxels``,
        ``consensus_voxels``, ``volume_mm3`` (of the consensus voxels), ``n_pieces``,
        ``centroid_ijk`` (of the consensus voxels, else of the union), ``votes`` (rater -> class
        vote, ``""`` = none) and ``vote_conflicts`` (raters whose anchors in it disagree).
    raters : tuple of str
        Rater names in the order given.
    majority : int
        Raters needed.
    """

    candidate_labels: np.ndarray
    lesion_labels: np.ndarray
    candidates: list[dict[str, Any]]
    raters: tuple[str, ...]
    majority: int

    @property
    def n_lesions(self) -> int:
        return sum(1 for c in self.candidates if c["status"] == LESION)


def binary_masks(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check the raters' masks and return them as boolean arrays (copies only where needed).

    Raises
    ------
    LesionInputError
        Fewer than two raters, an empty rater name, masks not 3-D or of different shapes, or a
        mask with a value other than 0 and 1.
    """
    if not isinstance(masks, Mapping) or len(masks) < 2:
        raise LesionInputError(f"a consensus needs the masks of at least 2 raters, got {len(masks) if isinstance(masks, Mapping) else 0}")
    out: dict[str, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for name, mask in masks.items():
        if not isinstance(name, str) or not name:
            raise LesionInputError(f"rater names must be non-empty strings, got {name!r}")
        arr = np.asarray(mask)
        if arr.ndim != 3:
            raise LesionInputError(f"rater {name}: mask must be 3-D, got shape {arr.shape}")
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise LesionInputError(f"rater {name}: mask has shape {arr.shape}, the first rater's has {shape}")
        if arr.dtype != np.bool_:
            if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
                raise LesionInputError(f"rater {name}: mask must be numeric or boolean, got {arr.dtype}")
            nonzero = arr != 0
            if not np.array_equal(arr[nonzero], np.ones(int(nonzero.sum()), dtype=arr.dtype)):
                raise LesionInputError(f"rater {name}: mask is not binary (values other than 0 and 1)")
            arr = nonzero
        out[name] = arr
    return out


def component_votes(
    candidate_labels: np.ndarray,
    masks: Mapping[str, np.ndarray],
    votes: Mapping[str, Sequence[Vote]] | None,
) -> tuple[dict[int, dict[str, str]], dict[int, list[str]]]:
    """Each rater's class vote per candidate, from anchored votes.

    Parameters
    ----------
    candidate_labels : (X, Y, Z) int array
        Candidates 1..m (:func:`build_consensus`'s ``candidate_labels``).
    masks : mapping of rater -> (X, Y, Z) bool
        The raters' masks.
    votes : mapping of rater -> sequence of ((i, j, k), vote), optional
        ``vote`` is ``"wm"``, ``"cortical"``, ``"mixed"`` or ``""``; the voxel must lie in the
        rater's own mask. Several anchors of one rater may fall in one candidate (two of the
        rater's lesions joined by another rater's): when their votes differ the rater counts as
        not voting on it and is listed in the conflicts.

    Returns
    -------
    votes : dict candidate -> {rater: vote}
        Only the raters who voted.
    conflicts : dict candidate -> [rater, ...]

    Raises
    ------
    LesionInputError
        An unknown rater, a malformed anchor, a voxel outside the grid or outside the rater's
        mask, or an unknown vote.
    """
    by_candidate: dict[int, dict[str, set[str]]] = {}
    shape = candidate_labels.shape
    for rater, anchors in (votes or {}).items():
        if rater not in masks:
            raise LesionInputError(f"votes given for rater {rater!r}, who has no mask")
        for anchor in anchors:
            try:
                ijk, vote = anchor
                voxel = tuple(int(v) for v in ijk)
            except (TypeError, ValueError) as exc:
                raise LesionInputError(f"rater {rater}: a vote must be ((i, j, k), vote), got {anchor!r}") from exc
            if len(voxel) != 3 or not all(0 <= v < n for v, n in zip(voxel, shape)):
                raise LesionInputError(f"rater {rater}: vote anchor {voxel} is outside the {shape} grid")
            if vote is None:
                vote = ""
            if vote not in VOTES:
                raise LesionInputError(f"rater {rater}: vote must be one of wm, cortical, mixed or empty, got {vote!r}")
            if not masks[rater][voxel]:
                raise LesionInputError(f"rater {rater}: vote anchor {voxel} is not inside the rater's mask")
            by_candidate.setdefault(int(candidate_labels[voxel]), {}).setdefault(rater, set()).add(vote)
    out: dict[int, dict[str, str]] = {}
    conflicts: dict[int, list[str]] = {}
    for candidate, per_rater in by_candidate.items():
        for rater, given in per_rater.items():
            cast = given - {""}
            if len(cast) == 1:
                out.setdefault(candidate, {})[rater] = cast.pop()
            elif len(cast) > 1:
                conflicts.setdefault(candidate, []).append(rater)
    return out, conflicts


def build_consensus(
    masks: Mapping[str, np.ndarray],
    voxel_size: Sequence[float],
    *,
    votes: Mapping[str, Sequence[Vote]] | None = None,
    params: ConsensusParams | None = None,
) -> Consensus:
    """The consensus lesions of the raters' masks (rules in the module docstring).

    Parameters
    ----------
    masks : mapping of rater name -> (X, Y, Z) array
        Binary masks (0/1 or bool) on one grid, at least two. Not modified.
    voxel_size : (3,) floats
        mm per array axis (for volumes).
    votes : mapping of rater -> sequence of ((i, j, k), vote), optional
        Class votes anchored in the rater's mask (:func:`component_votes`).
    params : ConsensusParams, optional
        Default: the study protocol.

    Returns
    -------
    Consensus

    Raises
    ------
    LesionInputError
        See :func:`binary_masks`, :func:`component_votes` and
        :meth:`ConsensusParams.majority_of`.
    """
    p = params or ConsensusParams()
    binary = binary_masks(masks)
    raters = tuple(binary)
    majority = p.majority_of(len(raters))
    vs = check_voxel_size(voxel_size)
    voxel_mm3 = float(np.prod(vs))
    min_volume = sphere_volume_mm3(p.min_lesion_diameter_mm)

    stack = list(binary.values())
    union = np.logical_or.reduce(stack)
    candidate_labels, n = label_lesions(union)
    rater_votes, conflicts = component_votes(candidate_labels, binary, votes)
    lesion_labels = np.zeros(union.shape, dtype=np.int32)
    candidates: list[dict[str, Any]] = []
    next_id = 1
    for c, box in enumerate(ndimage.find_objects(candidate_labels, max_label=n), start=1):
        inside = candidate_labels[box] == c
        marked = [r for r in raters if (binary[r][box] & inside).any()]
        count = np.zeros(inside.shape, dtype=np.uint8)
        for r in marked:
            count += binary[r][box] & inside
        agreed = count >= majority
        n_agreed = int(agreed.sum())
        if len(marked) < majority:
            status = REJECTED
        elif n_agreed == 0:
            status = ADJUDICATION
        elif n_agreed * voxel_mm3 < min_volume:
            status = TOO_SMALL
        else:
            status = LESION
        where = agreed if n_agreed else inside
        centroid = np.argwhere(where).mean(axis=0) + [s.start for s in box]
        lesion_id = None
        if status == LESION:
            lesion_id = next_id
            next_id += 1
            lesion_labels[box][agreed] = lesion_id
        candidates.append(
            {
                "candidate": c,
                "status": status,
                "lesion": lesion_id,
                "raters": marked,
                "n_raters": len(marked),
                "union_voxels": int(inside.sum()),
                "consensus_voxels": n_agreed,
                "volume_mm3": n_agreed * voxel_mm3,
                "n_pieces": int(ndimage.label(agreed, structure=STRUCTURE)[1]) if n_agreed else 0,
                "centroid_ijk": [round(float(v), 3) for v in centroid],
                "votes": dict(sorted(rater_votes.get(c, {}).items(), key=lambda kv: raters.index(kv[0]))),
                "vote_conflicts": conflicts.get(c, []),
            }
        )
    return Consensus(candidate_labels, lesion_labels, candidates, raters, majority)


def check_voxel_size(voxel_size: Sequence[float]) -> tuple[float, float, float]:
    """Three positive finite voxel dimensions in mm, as floats; :class:`LesionInputError` otherwise."""
    try:
        vs = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError) as exc:
        raise LesionInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}") from exc
    if len(vs) != 3 or not all(np.isfinite(v) and v > 0 for v in vs):
        raise LesionInputError(f"voxel size must be three positive numbers in mm, got {voxel_size!r}")
    return vs  # type: ignore[return-value]
