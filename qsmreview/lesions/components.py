"""Lesions of a rater's binary mask: connected components, their size, position and number.

A lesion is one connected component of the mask under **6-connectivity** (voxels touching by a
face; ``scipy.ndimage.generate_binary_structure(3, 1)``): two voxels that share only an edge or a
corner belong to different lesions. This is the rule of NiiVue's cluster erase
(``floodFillNeighbors`` 6) and of the MSSEG challenge's evaluation (anima), so the number a rater
sees in the viewer and the number stored here name the same voxels.

Numbers are stable across saves through *anchors*: the client sends, for every lesion it shows,
its number and the world position (mm) of one voxel inside it. The component holding that voxel
keeps the number (and the rater's vote); a component with no anchor is new and gets the next
unused number. This module has no Django import and does no file I/O.

References
----------
Commowick O, Istace A, Kain M, et al. Objective evaluation of multiple sclerosis lesion
segmentation using a data management and processing infrastructure. Sci Rep 2018;8:13650.
doi:10.1038/s41598-018-31911-7 (the MSSEG-2016 challenge; lesions as 6-connected components).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

#: Face connectivity in 3-D: each voxel has 6 neighbours.
CONNECTIVITY = 6
#: The structuring element of :data:`CONNECTIVITY` for :func:`scipy.ndimage.label`.
STRUCTURE = ndimage.generate_binary_structure(3, 1)
#: A rater's class vote for a lesion ("" = no vote yet).
VOTES = ("cortical", "wm", "mixed", "")
#: Confidence is 1 (unsure) .. 5 (certain), or None.
CONFIDENCE_RANGE = (1, 5)
#: Longest note kept per lesion (characters).
MAX_NOTE_CHARS = 2000
#: Largest lesion number accepted (fits a 32-bit signed integer everywhere it is stored).
MAX_NUMBER = 2**31 - 2

_DECIMALS = 6


class LesionAnchorError(ValueError):
    """An anchor (or the whole anchor list) cannot be matched to the mask; the message names the lesion."""


def nonzero_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The bounding box of a 3-D mask's non-zero voxels, with one voxel of margin.

    Parameters
    ----------
    mask : (X, Y, Z) array
        Non-zero voxels are lesion. Not modified.

    Returns
    -------
    tuple of three slices, or None
        The box grown by one voxel on every side and clipped to the grid; None for an empty mask.

    Notes
    -----
    One pass over the volume: the mask is projected along the axis that is slowest in memory
    (a streaming OR of whole planes), and the two small remaining passes run on the 2-D projection
    and on the box's slab.
    """
    nonzero = _nonzero(mask)
    outer = int(np.argmax(np.abs(nonzero.strides)))
    inner = [axis for axis in range(3) if axis != outer]
    plane = nonzero.any(axis=outer)  # (the two inner axes)
    bounds: dict[int, tuple[int, int]] = {}
    for position, axis in enumerate(inner):
        hit = np.flatnonzero(plane.any(axis=1 - position))
        if hit.size == 0:
            return None
        bounds[axis] = (int(hit[0]), int(hit[-1]) + 1)
    slab = nonzero[tuple(slice(*bounds[a]) if a in bounds else slice(None) for a in range(3))]
    hit = np.flatnonzero(slab.any(axis=tuple(inner)))
    bounds[outer] = (int(hit[0]), int(hit[-1]) + 1)
    shape = nonzero.shape
    return tuple(  # type: ignore[return-value]
        slice(max(bounds[a][0] - 1, 0), min(bounds[a][1] + 1, shape[a])) for a in range(3)
    )


def _nonzero(mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise ValueError(f"mask must be 3-D, got shape {arr.shape}")
    return arr if arr.dtype == np.bool_ else arr != 0


Box = tuple[slice, slice, slice]

#: 4-connectivity in a plane: where the 6-connected components of a volume project to.
_FOOTPRINT_STRUCTURE = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class _Part:
    """The components in one box of the grid: labels 1..n (scipy's order), 0 elsewhere, and
    their extents. Boxes of different parts may overlap; their labelled voxels never do."""

    box: Box
    labels: np.ndarray
    objects: list[Box]

    def first_voxel(self, label: int) -> tuple[int, int, int]:
        """The component's first voxel in C order of the whole grid (grid indices)."""
        part = self.objects[label - 1]
        plane = self.labels[part[0].start, part[1], part[2]] == label  # its first i-plane
        j, k = np.unravel_index(int(np.argmax(plane)), plane.shape)
        return (
            self.box[0].start + part[0].start,
            self.box[1].start + part[1].start + int(j),
            self.box[2].start + part[2].start + int(k),
        )


@dataclass(frozen=True)
class _Components:
    """A mask's components labelled part by part, numbered as one labelling of the grid would be."""

    parts: list[_Part]
    #: (part index, label in the part) of components 1..n, in order of their first voxel.
    order: list[tuple[int, int]]
    #: Per part, its labels -> the grid's numbers (index 0 -> 0).
    luts: list[np.ndarray]

    @property
    def n(self) -> int:
        return len(self.order)

    def number_at(self, ijk: Sequence[int]) -> int:
        """The component holding voxel ``ijk`` (grid indices), 0 outside the mask."""
        for part, lut in zip(self.parts, self.luts):
            local = tuple(int(v) - b.start for v, b in zip(ijk, part.box))
            if all(0 <= v < n for v, n in zip(local, part.labels.shape)) and part.labels[local]:
                return int(lut[part.labels[local]])
        return 0

    def voxels(self, number: int) -> np.ndarray:
        """(n, 3) int64 grid indices of component ``number``'s voxels, in C order."""
        p, label = self.order[number - 1]
        part = self.parts[p]
        where = part.objects[label - 1]
        local = np.nonzero(part.labels[where] == label)
        return np.stack([idx + s.start + b.start for idx, s, b in zip(local, where, part.box)], axis=1)


def _parts(nonzero: np.ndarray) -> list[_Part]:
    """Label a boolean mask's components footprint by footprint.

    The mask (within :func:`nonzero_box`) is projected along the axis slowest in memory; a
    6-connected component projects to a 4-connected footprint, so each footprint's column of
    voxels is labelled on its own, cropped to its mask voxels. Lesions scattered over the brain
    thus cost a few small labellings, not one the size of the brain.
    """
    box = nonzero_box(nonzero)
    if box is None:
        return []
    sub = nonzero[box]
    outer = int(np.argmax(np.abs(nonzero.strides)))
    inner = tuple(axis for axis in range(3) if axis != outer)
    footprints, _ = ndimage.label(sub.any(axis=outer), structure=_FOOTPRINT_STRUCTURE)
    parts: list[_Part] = []
    for number, (a, b) in enumerate(ndimage.find_objects(footprints), start=1):
        where: list[slice] = [slice(None)] * 3
        where[inner[0]], where[inner[1]] = a, b
        # The footprint's column, without the voxels of other footprints that share its box.
        column = sub[tuple(where)] & np.expand_dims(footprints[a, b] == number, outer)
        hit = np.flatnonzero(column.any(axis=inner))
        span = slice(int(hit[0]), int(hit[-1]) + 1)
        crop: list[slice] = [slice(None)] * 3
        crop[outer] = span
        where[outer] = span
        # A C-ordered copy: scipy labels it about twice as fast as a strided view.
        labels, n = ndimage.label(np.ascontiguousarray(column[tuple(crop)]), structure=STRUCTURE, output=np.int32)
        grid_box = tuple(slice(outer_box.start + w.start, outer_box.start + w.stop) for outer_box, w in zip(box, where))
        parts.append(_Part(box=grid_box, labels=labels, objects=ndimage.find_objects(labels, max_label=int(n))))  # type: ignore[arg-type]
    return parts


def _components(mask: np.ndarray) -> _Components:
    parts = _parts(_nonzero(mask))
    firsts = sorted(
        (part.first_voxel(label), p, label) for p, part in enumerate(parts) for label in range(1, len(part.objects) + 1)
    )
    luts = [np.zeros(len(part.objects) + 1, np.int32) for part in parts]
    for number, (_, p, label) in enumerate(firsts, start=1):
        luts[p][label] = number
    return _Components(parts=parts, order=[(p, label) for _, p, label in firsts], luts=luts)


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 6-connected components of a 3-D mask.

    Only the voxels near the mask are labelled: within the bounding box of the non-zero voxels
    (:func:`nonzero_box`), the column of each footprint of the mask in projection, labelled one by
    one. A mask of a few lesions costs milliseconds, not a pass of :func:`scipy.ndimage.label`
    over every voxel; the result is the same.

    Parameters
    ----------
    mask : (X, Y, Z) array
        Non-zero voxels are lesion. Not modified.

    Returns
    -------
    labels : (X, Y, Z) int32 array
        0 outside the mask, 1..n for the components, in the order of their first voxel in C
        (row-major) order of the array.
    n : int
        Number of components.

    Raises
    ------
    ValueError
        ``mask`` is not 3-D.
    """
    found = _components(mask)
    labels = np.zeros(np.shape(mask), dtype=np.int32)
    for part, lut in zip(found.parts, found.luts):
        inside = part.labels > 0  # the parts' boxes may overlap, their voxels do not
        labels[part.box][inside] = lut[part.labels[inside]]
    return labels, found.n


def sphere_volume_mm3(diameter_mm: float) -> float:
    """Volume of a sphere of ``diameter_mm`` (mm^3): 4/3 * pi * (d/2)^3."""
    return 4.0 / 3.0 * math.pi * (float(diameter_mm) / 2.0) ** 3


def _check_affine(affine: Any) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError("affine must be a finite 4x4 matrix")
    if abs(float(np.linalg.det(a[:3, :3]))) < 1e-12:
        raise ValueError("affine is singular: its voxel axes are (nearly) parallel")
    return a


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_finite_number(value: Any) -> bool:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        return False


def _parse_anchor(item: Any, position: int) -> dict[str, Any]:
    """One anchor checked and normalised; raise :class:`LesionAnchorError` naming it."""
    if not isinstance(item, Mapping):
        raise LesionAnchorError(f"lesion entry {position + 1} must be an object with number and anchor_mm")
    number = item.get("number")
    if not _is_int(number) or not 1 <= int(number) <= MAX_NUMBER:
        raise LesionAnchorError(
            f"lesion entry {position + 1}: number must be a whole number from 1 to {MAX_NUMBER}, got {number!r}"
        )
    number = int(number)
    name = f"lesion {number}"
    unknown = sorted(set(item) - {"number", "anchor_mm", "vote", "confidence", "note"})
    if unknown:
        raise LesionAnchorError(f"{name}: unknown field(s) {', '.join(map(str, unknown))}")
    anchor = item.get("anchor_mm")
    if (
        not isinstance(anchor, (list, tuple))
        or len(anchor) != 3
        or not all(_is_finite_number(v) for v in anchor)
    ):
        raise LesionAnchorError(f"{name}: anchor_mm must be three finite numbers [x, y, z] in mm, got {anchor!r}")
    vote = item.get("vote", "")
    vote = "" if vote is None else vote
    if vote not in VOTES:
        raise LesionAnchorError(f"{name}: vote must be one of cortical, wm, mixed or empty, got {vote!r}")
    confidence = item.get("confidence")
    lo, hi = CONFIDENCE_RANGE
    if confidence is not None and (not _is_int(confidence) or not lo <= int(confidence) <= hi):
        raise LesionAnchorError(f"{name}: confidence must be a whole number from {lo} to {hi} or null, got {confidence!r}")
    note = item.get("note", "")
    note = "" if note is None else note
    if not isinstance(note, str):
        raise LesionAnchorError(f"{name}: note must be text")
    if len(note) > MAX_NOTE_CHARS:
        raise LesionAnchorError(f"{name}: note is longer than {MAX_NOTE_CHARS} characters")
    if "\x00" in note:
        raise LesionAnchorError(f"{name}: note may not contain the NUL character")
    return {
        "number": number,
        "anchor_mm": [float(v) for v in anchor],
        "vote": vote,
        "confidence": None if confidence is None else int(confidence),
        "note": note,
    }


def _world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(ijk, dtype=np.float64) + affine[:3, 3]


def _rounded(values: Any) -> list[float]:
    return [round(float(v), _DECIMALS) for v in values]


def lesion_table(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    anchors: Sequence[Mapping[str, Any]],
    min_diameter_mm: float,
    next_number: int,
) -> list[dict[str, Any]]:
    """Number and measure every lesion (6-connected component) of a mask.

    Parameters
    ----------
    mask : (X, Y, Z) array
        Binary lesion mask (non-zero = lesion) on the grid of ``affine``. Not modified.
    affine : (4, 4) array
        Voxel (i, j, k) to world (scanner RAS, mm), as in the NIfTI sform.
    anchors : sequence of mappings
        The client's lesions: ``{"number": int >= 1, "anchor_mm": [x, y, z] (mm), "vote":
        "cortical" | "wm" | "mixed" | "", "confidence": 1..5 | None, "note": str}``.
        ``anchor_mm`` is the world centre of one voxel of that lesion; it is mapped to the voxel
        ``round(inv(affine) @ [x, y, z, 1])``.
    min_diameter_mm : float
        Diameter (mm) of the smallest lesion counted as such; a component whose volume is below
        that of a sphere of this diameter (:func:`sphere_volume_mm3`) is flagged
        ``below_min_size`` (and still listed).
    next_number : int
        The first number for components with no anchor (1 + the largest number ever used);
        raised to 1 + the largest anchor number if that is larger. Unanchored components are
        numbered in the order of :func:`label_lesions`.

    Returns
    -------
    list of dict, sorted by number
        One per component: ``number``, ``voxels`` (count), ``volume_mm3`` (voxels x |det| of the
        affine's 3x3 part), ``centroid_voxel`` ([i, j, k], float), ``centroid_mm`` (world
        [x, y, z] of the centroid), ``anchor_mm`` (the client's anchor, or the world centre of the
        component's voxel nearest its centroid in mm), ``below_min_size``, ``vote``,
        ``confidence``, ``note``.

    Raises
    ------
    LesionAnchorError
        An anchor is malformed, outside the grid or outside the mask; two anchors carry the same
        number; or two numbers fall in one component (lesions merged by the client's edit without
        resolving which number stays). The message names the lesion number(s).
    ValueError
        ``mask`` is not 3-D, ``affine`` not an invertible 4x4 matrix, ``min_diameter_mm``
        negative or ``next_number`` below 1.

    Examples
    --------
    >>> m = np.zeros((4, 4, 4), np.uint8); m[:2, :2, :2] = 1
    >>> [(l["number"], l["voxels"], l["volume_mm3"]) for l in lesion_table(
    ...     m, np.diag([0.5, 0.5, 1.0, 1.0]), anchors=[], min_diameter_mm=2.0, next_number=1)]
    [(1, 8, 2.0)]
    """
    a = _check_affine(affine)
    if not (math.isfinite(float(min_diameter_mm)) and float(min_diameter_mm) >= 0):
        raise ValueError(f"min_diameter_mm must be a non-negative number of mm, got {min_diameter_mm!r}")
    if not _is_int(next_number) or int(next_number) < 1:
        raise ValueError(f"next_number must be a whole number >= 1, got {next_number!r}")
    found = _components(mask)
    shape = np.shape(mask)

    parsed = [_parse_anchor(item, i) for i, item in enumerate(anchors)]
    by_label: dict[int, dict[str, Any]] = {}
    seen: set[int] = set()
    inverse = np.linalg.inv(a)
    for anchor in parsed:
        number = anchor["number"]
        if number in seen:
            raise LesionAnchorError(f"lesion {number} is listed twice")
        seen.add(number)
        with np.errstate(over="ignore", invalid="ignore"):
            ijk = np.rint(inverse[:3, :3] @ np.asarray(anchor["anchor_mm"]) + inverse[:3, 3])
        if not all(np.isfinite(v) and 0 <= v < s for v, s in zip(ijk, shape)):
            where = f"voxel {[int(v) for v in ijk]}" if np.all(np.isfinite(ijk)) else "far away"
            raise LesionAnchorError(
                f"lesion {number}: anchor {anchor['anchor_mm']} mm is outside the image "
                f"({where} of a {'x'.join(map(str, shape))} grid)"
            )
        label = found.number_at([int(v) for v in ijk])
        if label == 0:
            raise LesionAnchorError(
                f"lesion {number}: anchor {anchor['anchor_mm']} mm (voxel {[int(v) for v in ijk]}) "
                "is not inside the mask: was the lesion erased?"
            )
        if label in by_label:
            first, second = sorted((by_label[label]["number"], number))
            raise LesionAnchorError(
                f"lesions {first} and {second} are one connected lesion now (merged): "
                "keep one number and remove the other"
            )
        by_label[label] = anchor

    voxel_volume = abs(float(np.linalg.det(a[:3, :3])))
    threshold = sphere_volume_mm3(float(min_diameter_mm))
    number = max([int(next_number), *(x["number"] + 1 for x in parsed)])
    rows: list[dict[str, Any]] = []
    for label in range(1, found.n + 1):
        ijk = found.voxels(label).astype(np.float64)
        centroid = ijk.mean(axis=0)
        anchor = by_label.get(label)
        if anchor is None:
            # The voxel nearest the centroid in world distance (voxels may be anisotropic).
            offsets = (ijk - centroid) @ a[:3, :3].T
            nearest = ijk[int(np.argmin(np.einsum("ij,ij->i", offsets, offsets)))]
            anchor = {"number": number, "anchor_mm": _world(a, nearest).tolist(), "vote": "", "confidence": None, "note": ""}
            number += 1
        voxels = int(ijk.shape[0])
        volume = voxels * voxel_volume
        rows.append(
            {
                "number": anchor["number"],
                "voxels": voxels,
                "volume_mm3": round(volume, _DECIMALS),
                "centroid_mm": _rounded(_world(a, centroid)),
                "centroid_voxel": _rounded(centroid),
                "anchor_mm": _rounded(anchor["anchor_mm"]),
                "below_min_size": bool(volume < threshold),
                "vote": anchor["vote"],
                "confidence": anchor["confidence"],
                "note": anchor["note"],
            }
        )
    rows.sort(key=lambda row: row["number"])
    return rows
