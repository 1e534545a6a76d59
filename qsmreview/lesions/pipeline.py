"""One session's lesion analysis, from the raters' masks to the lesion table.

:func:`analyse_session` validates the inputs, then runs the steps in one order:

1. consensus lesions (:mod:`~qsmreview.lesions.consensus`);
2. class and portions of each lesion (:mod:`~qsmreview.lesions.classify`);
3. reference ROIs (:mod:`~qsmreview.lesions.reference`);
4. susceptibility of each lesion or portion and of its reference (:mod:`~qsmreview.lesions.measure`);
5. agreement of the raters (:mod:`~qsmreview.lesions.agreement`);
6. QC proposals (:mod:`~qsmreview.lesions.qc`): lesions cut by the QSM mask, likely vessels;
7. with ``per_rater``, each rater's own lesions measured the same way (:func:`rater_lesion_tables`).

:func:`remeasure` repeats steps 2-4 after a reviewer's QC edits. Inputs are never modified.
No Django, no file I/O (the CLI, :mod:`qsmreview.lesions.cli`, loads and saves).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from qsmreview.lesions.agreement import session_agreement
from qsmreview.lesions.classify import PORTION_TISSUE, LesionClass, check_tissue, classify_lesions
from qsmreview.lesions.columns import CORE_COLUMNS, TABLE_COLUMNS  # noqa: F401  (re-exported)
from qsmreview.lesions.components import label_lesions, sphere_volume_mm3
from qsmreview.lesions.consensus import (
    ADJUDICATION,
    LESION,
    Vote,
    binary_masks,
    build_consensus,
    check_voxel_size,
    component_votes,
)
from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.measure import RoiStats, relative, roi_stats
from qsmreview.lesions.params import ConsensusParams
from qsmreview.lesions.qc import exclude_lesions, exclude_rois, mask_cut_fractions, vessel_proposals
from qsmreview.lesions.reference import References, reference_rois, roi_id, roi_parts

Progress = Callable[[float, str], None]

#: Columns that are empty (None) without a QSM map.
SUSCEPTIBILITY_COLUMNS = (
    "lesion_mean_ppm",
    "lesion_sd_ppm",
    "reference_mean_ppm",
    "reference_sd_ppm",
    "relative_susceptibility_ppm",
)
#: Candidate status set by :func:`remeasure` for a lesion a reviewer excluded.
EXCLUDED = "excluded"


@dataclass(frozen=True)
class SessionAnalysis:
    """The lesion analysis of one session.

    Attributes
    ----------
    lesion_labels : (X, Y, Z) int32
        0 elsewhere, 1..n the counted consensus lesions.
    reference_labels : (X, Y, Z) int32
        0 elsewhere, ROI id ``10 * lesion + 1`` (WM reference) or ``+ 2`` (cortical reference)
        (:func:`~qsmreview.lesions.reference.roi_id`).
    candidates : list of dict
        Every candidate and its status (``"lesion"``, ``"rejected"``, ``"too_small"``,
        ``"adjudication"``, and after :func:`remeasure` ``"excluded"``); keys in
        :class:`~qsmreview.lesions.consensus.Consensus`.
    rows : list of dict
        The lesion table, keys :data:`TABLE_COLUMNS`; None marks an empty cell.
    agreement : dict
        :func:`~qsmreview.lesions.agreement.session_agreement`.
    vessel_proposals : (X, Y, Z) bool or None
        Voxels proposed as vessel (not applied); None when not computed or without QSM.
    params : ConsensusParams
    raters : tuple of str
    voxel_size : (3,) floats, mm
    subject : str
    timings : dict stage -> seconds
    marked : (X, Y, Z) bool
        The union of the raters' masks (kept out of reference ROIs by :func:`remeasure` too).
    lesion_votes : dict lesion id -> {rater: vote}
    rater_rows : dict rater -> list of dict
        With ``per_rater``: each rater's own lesions (:func:`rater_lesion_tables`); else empty.
    """

    lesion_labels: np.ndarray
    reference_labels: np.ndarray
    candidates: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    agreement: dict[str, Any]
    vessel_proposals: np.ndarray | None
    params: ConsensusParams
    raters: tuple[str, ...]
    voxel_size: tuple[float, float, float]
    subject: str
    timings: dict[str, float]
    marked: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0, 0), bool))
    lesion_votes: dict[int, dict[str, str]] = field(default_factory=dict)
    rater_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for a log or a terminal."""
        status = Counter(c["status"] for c in self.candidates)
        types = Counter(r["lesion_type"] for r in self.rows if r["portion"] != "wm" or r["lesion_type"] != "mixed")
        head = f"subject {self.subject}: " if self.subject else ""
        lines = [
            f"{head}{len(self.raters)} raters ({', '.join(self.raters)}), {len(self.candidates)} candidates: "
            + ", ".join(f"{status[s]} {s}" for s in ("lesion", "rejected", "too_small", "adjudication", EXCLUDED) if status[s]),
            "lesions by class: " + (", ".join(f"{n} {t}" for t, n in sorted(types.items())) or "none"),
        ]
        pairs = self.agreement.get("pairs", [])
        if pairs:
            lines.append(
                "lesion F1 per pair: "
                + ", ".join(f"{p['reference']}|{p['tested']} {_fmt(p['f1'])}" for p in pairs)
            )
        kappa = self.agreement.get("class_votes", {}).get("kappa")
        lines.append(f"Fleiss' kappa of class votes: {_fmt(kappa)}")
        flagged = sum(1 for r in self.rows if r["reference_flag"])
        if flagged:
            lines.append(f"{flagged} reference ROI(s) flagged")
        lines.append("times: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _report(progress: Progress | None, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(fraction, stage)


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise LesionInputError(f"{what} has shape {arr.shape}, the masks {shape}")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise LesionInputError(f"{what} must be numeric or boolean, got {arr.dtype}")
        if not np.all((arr == 0) | (arr == 1)):
            raise LesionInputError(f"{what} is not binary (values other than 0 and 1)")
        arr = arr != 0
    return arr


def _check_qsm(qsm: np.ndarray | None, shape: tuple[int, ...], mask: np.ndarray | None) -> np.ndarray | None:
    if qsm is None:
        return None
    arr = np.asarray(qsm)
    if arr.shape != shape:
        raise LesionInputError(f"QSM has shape {arr.shape}, the masks {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise LesionInputError(f"QSM must be real numbers (ppm), got {arr.dtype}")
    finite = np.isfinite(arr)
    bad = ~finite if mask is None else mask & ~finite
    if bad.any():
        where = "inside the QSM mask" if mask is not None else "(no QSM mask given: every voxel counts)"
        raise LesionInputError(f"QSM has {int(bad.sum())} NaN or infinite value(s) {where}")
    return arr


def _box(labels: np.ndarray) -> list[tuple[slice, ...] | None]:
    return ndimage.find_objects(labels)


def _reference_info(reference_labels: np.ndarray, p: ConsensusParams) -> dict[int, dict[str, Any]]:
    """ROI facts of an edited reference map: voxels, central slice (its most populated), flag."""
    info: dict[int, dict[str, Any]] = {}
    for rid, box in enumerate(_box(reference_labels), start=1):
        if box is None:
            continue
        lesion, portion = roi_parts(rid)
        inside = reference_labels[box] == rid
        n = int(inside.sum())
        k = box[2].start + int(np.argmax(inside.sum(axis=(0, 1))))
        info[rid] = {"lesion": lesion, "portion": portion, "central_slice": k, "n_voxels": n,
                     "flag": "small" if n < p.reference_min_voxels else ""}
    return info


def _rows(
    *,
    subject: str,
    lesion_labels: np.ndarray,
    tissue: np.ndarray,
    classes: Mapping[int, LesionClass],
    references: References,
    raters_of: Mapping[int, list[str]],
    qsm: np.ndarray | None,
    qsm_mask: np.ndarray | None,
    voxel_size: tuple[float, float, float],
    cut: Mapping[int, float],
    progress: Progress | None,
    span: tuple[float, float],
    adjudicated: Collection[int] = (),
) -> list[dict[str, Any]]:
    voxel_mm3 = float(np.prod(voxel_size))
    lesion_boxes = _box(lesion_labels)
    ref_boxes = _box(references.labels)
    rows: list[dict[str, Any]] = []
    for done, (lesion, cls) in enumerate(classes.items()):
        _report(progress, span[0] + (span[1] - span[0]) * done / max(len(classes), 1), "measure")
        box = lesion_boxes[lesion - 1]
        assert box is not None
        inside = lesion_labels[box] == lesion
        centroid = [round(float(v) + s.start, 3) for v, s in zip(np.argwhere(inside).mean(axis=0), box)]
        base = {
            "subject": subject,
            "lesion": lesion,
            "lesion_type": cls.lesion_type,
            "cortical_fraction": None if not np.isfinite(cls.cortical_fraction) else round(cls.cortical_fraction, 6),
            "raters": list(raters_of.get(lesion, [])),
            "lesion_n_voxels": cls.n_voxels,
            "centroid_ijk": centroid,
            "vote_majority": cls.vote_majority,
            "class_disagreement": cls.class_disagreement,
            "qsm_mask_cut_fraction": None if qsm_mask is None else round(cut.get(lesion, 0.0), 6),
            "rule_type": cls.rule_type or cls.lesion_type,
            "adjudicated": lesion in adjudicated,
        }
        for portion in cls.portions or ("",):
            if portion:
                body = inside & (tissue[box] == PORTION_TISSUE[portion])
                measured = body if qsm_mask is None else body & qsm_mask[box]
                lesion_stats = roi_stats(None if qsm is None else qsm[box], measured)
                rid = roi_id(lesion, portion)
                entry = references.info.get(rid)
                rbox = ref_boxes[rid - 1] if rid - 1 < len(ref_boxes) else None
                if rbox is not None:
                    ref_stats = roi_stats(None if qsm is None else qsm[rbox], references.labels[rbox] == rid)
                else:
                    ref_stats = RoiStats(0, None, None)
                n_body = int(body.sum())
            else:
                lesion_stats = ref_stats = RoiStats(0, None, None)
                entry, rid, n_body = None, None, 0
            row = {
                **base,
                "portion": portion or None,
                "n_voxels": n_body,
                "volume_mm3": round(n_body * voxel_mm3, 6),
                "lesion_mean_ppm": lesion_stats.mean,
                "lesion_sd_ppm": lesion_stats.sd,
                "reference_mean_ppm": ref_stats.mean,
                "reference_sd_ppm": ref_stats.sd,
                "reference_n_voxels": ref_stats.n_voxels,
                "relative_susceptibility_ppm": relative(lesion_stats, ref_stats),
                "measured_n_voxels": lesion_stats.n_voxels,
                "central_slice": None if entry is None else entry["central_slice"],
                "reference_roi": rid,
                "reference_flag": "empty" if entry is None else entry["flag"],
            }
            if qsm is None:
                row.update({c: None for c in SUSCEPTIBILITY_COLUMNS})
            rows.append({c: row[c] for c in TABLE_COLUMNS})
    return rows


def analyse_session(
    masks: Mapping[str, np.ndarray],
    tissue: np.ndarray,
    voxel_size: tuple[float, float, float],
    *,
    qsm: np.ndarray | None = None,
    qsm_mask: np.ndarray | None = None,
    votes: Mapping[str, Sequence[tuple[tuple[int, int, int], str]]] | None = None,
    subject: str = "",
    params: ConsensusParams | None = None,
    propose_vessels: bool = True,
    per_rater: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> SessionAnalysis:
    """Consensus, classification, reference ROIs, measurements, agreement and QC proposals.

    Parameters
    ----------
    masks : mapping rater name -> (X, Y, Z) array
        Each rater's binary lesion mask (0/1 or bool) on the T2* grid; at least two.
    tissue : (X, Y, Z) integer array
        FSL FAST codes 0 background, 1 CSF, 2 GM, 3 WM on the same grid.
    voxel_size : (3,) floats
        mm per array axis.
    qsm : (X, Y, Z) float, optional
        Susceptibility in ppm; without it the susceptibility columns are empty (None).
    qsm_mask : (X, Y, Z) bool, optional
        The eroded QSM mask (the caller erodes it): QSM must be finite inside it; lesion and
        reference voxels outside it are not measured, and lesions cut by it are flagged.
    votes : mapping rater -> sequence of ((i, j, k), vote), optional
        Class votes ("wm", "cortical", "mixed", "") anchored at a voxel of the rater's mask.
    subject : str
        Written in every row.
    params : ConsensusParams, optional
        Default: the study protocol.
    propose_vessels : bool
        Compute vessel proposals near the lesions (needs ``qsm``).
    per_rater : bool
        Also measure each rater's own lesions (``rater_rows``, :func:`rater_lesion_tables`).
    progress : callable(fraction, stage), optional

    Returns
    -------
    SessionAnalysis

    Raises
    ------
    LesionInputError
        Fewer than two raters; masks, tissue, QSM or QSM mask of another shape; a mask that is
        not binary; tissue labels other than 0..3; NaN or infinite QSM inside the QSM mask; a
        vote outside its rater's mask; bad voxel size or parameters.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    p = params if params is not None else ConsensusParams()
    if not isinstance(p, ConsensusParams):
        raise LesionInputError(f"params must be ConsensusParams, got {type(p).__name__}")
    if not isinstance(subject, str):
        raise LesionInputError(f"subject must be text, got {type(subject).__name__}")
    _report(progress, 0.0, "validate inputs")
    binary = binary_masks(masks)
    raters = tuple(binary)
    shape = next(iter(binary.values())).shape
    vs = check_voxel_size(voxel_size)
    t = check_tissue(tissue, shape)
    m = _check_mask(qsm_mask, shape, "QSM mask")
    chi = _check_qsm(qsm, shape, m)
    p.majority_of(len(raters))
    timings["validate"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    _report(progress, 0.05, "consensus")
    cons = build_consensus(binary, vs, votes=votes, params=p)
    timings["consensus"] = time.perf_counter() - t1

    lesion_votes = {c["lesion"]: dict(c["votes"]) for c in cons.candidates if c["status"] == LESION}
    raters_of = {c["lesion"]: list(c["raters"]) for c in cons.candidates if c["status"] == LESION}
    marked = cons.candidate_labels > 0
    rows, references_labels = _measure(
        lesion_labels=cons.lesion_labels,
        reference_labels=None,
        tissue=t,
        qsm=chi,
        qsm_mask=m,
        marked=marked,
        lesion_votes=lesion_votes,
        raters_of=raters_of,
        voxel_size=vs,
        subject=subject,
        params=p,
        progress=progress,
        timings=timings,
    )

    t5 = time.perf_counter()
    _report(progress, 0.8, "agreement")
    agreement = session_agreement(binary, cons.lesion_labels, vs, votes=lesion_votes, params=p)
    timings["agreement"] = time.perf_counter() - t5

    vessels = None
    if propose_vessels and chi is not None:
        t6 = time.perf_counter()
        _report(progress, 0.9, "vessel proposals")
        vessels = vessel_proposals(chi, cons.lesion_labels, vs, qsm_mask=m, reach_vox=p.reference_max_distance_vox)
        timings["vessels"] = time.perf_counter() - t6
    rater_rows: dict[str, list[dict[str, Any]]] = {}
    if per_rater:
        t7 = time.perf_counter()
        _report(progress, 0.95, "each rater's lesions")
        rater_rows = rater_lesion_tables(
            binary, t, vs, qsm=chi, qsm_mask=m, marked=marked, votes=votes, subject=subject, params=p,
            candidate_labels=cons.candidate_labels,
        )
        timings["raters"] = time.perf_counter() - t7
    timings["total"] = time.perf_counter() - t0
    _report(progress, 1.0, "done")
    return SessionAnalysis(
        lesion_labels=cons.lesion_labels,
        reference_labels=references_labels,
        candidates=cons.candidates,
        rows=rows,
        agreement=agreement,
        vessel_proposals=vessels,
        params=p,
        raters=raters,
        voxel_size=vs,
        subject=subject,
        timings=timings,
        marked=marked,
        lesion_votes=lesion_votes,
        rater_rows=rater_rows,
    )


def rater_lesion_tables(
    masks: Mapping[str, np.ndarray],
    tissue: np.ndarray,
    voxel_size: tuple[float, float, float],
    *,
    qsm: np.ndarray | None,
    qsm_mask: np.ndarray | None,
    marked: np.ndarray,
    votes: Mapping[str, Sequence[Vote]] | None = None,
    subject: str = "",
    params: ConsensusParams,
    candidate_labels: np.ndarray | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Each rater's own lesions, measured as the consensus lesions are.

    A rater's lesions are the 6-connected components of their mask with at least the volume of
    a sphere of ``params.min_lesion_diameter_mm`` (the consensus rule for a counted lesion),
    numbered 1..n in C order of their first voxel. Each is classed by its cortical fraction (the
    75 / 25 % rule, the rater's anchored vote as ``vote_majority``), gets reference ROIs by the
    consensus rules (same tissue, within reach, a gap, outside every rater's mark: ``marked``)
    and is measured inside the QSM mask: relative susceptibility = mean(lesion) - mean(reference),
    ppm, the reference study's definition, as for the consensus lesions. This is the table of a
    single reader, for comparing one rater's result with the consensus.

    Parameters
    ----------
    masks : mapping rater -> (X, Y, Z) bool
        The raters' binary masks (:func:`~qsmreview.lesions.consensus.binary_masks`).
    tissue : (X, Y, Z) uint8
        FSL FAST codes, checked (:func:`~qsmreview.lesions.classify.check_tissue`).
    voxel_size : (3,) floats, mm
    qsm, qsm_mask : arrays or None
        Susceptibility in ppm and where it is measured, checked as by :func:`analyse_session`.
    marked : (X, Y, Z) bool
        The union of the raters' masks (kept out of every reference ROI).
    votes : mapping rater -> sequence of ((i, j, k), vote), optional
    subject : str
    params : ConsensusParams
    candidate_labels : (X, Y, Z) int, optional
        The consensus candidates (components of the union): each row then names the
        ``candidate`` holding the rater's lesion.

    Returns
    -------
    dict rater -> rows
        Rows with the keys of :data:`TABLE_COLUMNS` (``raters`` = [the rater]; ``adjudicated``
        False) plus ``candidate`` (None without ``candidate_labels``).
    """
    voxel_mm3 = float(np.prod(voxel_size))
    min_voxels = sphere_volume_mm3(params.min_lesion_diameter_mm) / voxel_mm3
    out: dict[str, list[dict[str, Any]]] = {}
    for rater, mask in masks.items():
        labels, n = label_lesions(mask)
        boxes = _box(labels)
        keep = np.array([int((labels[b] == k).sum()) >= min_voxels - 1e-9 for k, b in enumerate(boxes, start=1)],
                        dtype=bool)
        if not keep.all():
            remap = np.zeros(n + 1, np.int32)
            remap[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
            labels = remap[labels]
        kept = [b for b, k in zip(boxes, keep) if k]  # renumbering keeps the order: boxes of 1..m
        own_votes, _ = component_votes(labels, {rater: mask}, {rater: (votes or {}).get(rater, ())})
        own_votes.pop(0, None)  # anchors in components too small to count
        ids = range(1, int(keep.sum()) + 1)
        rows, _ = _measure(
            lesion_labels=labels,
            reference_labels=None,
            tissue=tissue,
            qsm=qsm,
            qsm_mask=qsm_mask,
            marked=marked,
            lesion_votes=own_votes,
            raters_of={k: [rater] for k in ids},
            voxel_size=voxel_size,
            subject=subject,
            params=params,
            progress=None,
            timings={},
        )
        candidate_of: dict[int, int | None] = {k: None for k in ids}
        if candidate_labels is not None:
            for k, box in enumerate(kept, start=1):
                candidate_of[k] = int(candidate_labels[box][labels[box] == k][0])
        out[rater] = [{**row, "candidate": candidate_of[row["lesion"]]} for row in rows]
    return out


def _measure(
    *,
    lesion_labels: np.ndarray,
    reference_labels: np.ndarray | None,
    tissue: np.ndarray,
    qsm: np.ndarray | None,
    qsm_mask: np.ndarray | None,
    marked: np.ndarray,
    lesion_votes: Mapping[int, Mapping[str, str]],
    raters_of: Mapping[int, list[str]],
    voxel_size: tuple[float, float, float],
    subject: str,
    params: ConsensusParams,
    progress: Progress | None,
    timings: dict[str, float],
    class_overrides: Mapping[int, str] | None = None,
    adjudicated: Collection[int] = (),
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Steps 2-4 and the mask-cut proposal: (rows, reference labels)."""
    t2 = time.perf_counter()
    _report(progress, 0.2, "classify")
    classes = classify_lesions(lesion_labels, tissue, votes=lesion_votes, params=params, overrides=class_overrides)
    timings["classify"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    _report(progress, 0.3, "reference ROIs")
    if reference_labels is None:
        references = reference_rois(lesion_labels, tissue, classes, marked=marked, qsm_mask=qsm_mask, params=params)
    else:
        references = References(reference_labels, _reference_info(reference_labels, params))
    timings["reference"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    cut = mask_cut_fractions(lesion_labels, qsm_mask) if qsm_mask is not None else {}
    rows = _rows(
        subject=subject,
        lesion_labels=lesion_labels,
        tissue=tissue,
        classes=classes,
        references=references,
        raters_of=raters_of,
        qsm=qsm,
        qsm_mask=qsm_mask,
        voxel_size=voxel_size,
        cut=cut,
        progress=progress,
        span=(0.5, 0.8),
        adjudicated=adjudicated,
    )
    timings["measure"] = time.perf_counter() - t4
    return rows, references.labels


def remeasure(
    analysis: SessionAnalysis,
    tissue: np.ndarray,
    *,
    qsm: np.ndarray | None = None,
    qsm_mask: np.ndarray | None = None,
    lesion_labels: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
    excluded: Collection[int] = (),
    included: Collection[int] = (),
    class_overrides: Mapping[int, str] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SessionAnalysis:
    """The analysis measured again after a reviewer's decisions and QC edits.

    Parameters
    ----------
    analysis : SessionAnalysis
        From :func:`analyse_session` or an earlier :func:`remeasure` (its consensus, votes,
        agreement and proposals are kept).
    tissue : (X, Y, Z) integer array
        The FAST labels the analysis used.
    qsm, qsm_mask : optional
        As for :func:`analyse_session`.
    lesion_labels : (X, Y, Z) int array, optional
        The edited lesion map (e.g. :func:`~qsmreview.lesions.qc.remove_voxels` applied): only
        ids of the analysis' lesions (and of ``included`` candidates); default the analysis' map.
    reference_labels : (X, Y, Z) int array, optional
        Edited reference ROIs (ROI ids). Default: computed again from the (edited) lesions with
        the same rules; give the analysis' own map to keep its ROIs.
    excluded : collection of int
        Lesion ids the reviewer excluded: removed from both maps and from the table, their
        candidates marked ``"excluded"``.
    included : collection of int
        Candidates left to adjudication (no voxel marked by a majority) that the reviewer accepts
        as lesions. Each becomes a lesion delineated by the union of its raters' marks (the
        candidate's voxels, where the given map does not already hold it), with the next free
        ids in candidate order (the largest lesion id of the analysis + 1, + 2, ...); its
        candidate gets status ``"lesion"`` and ``adjudicated`` True, and its rows say
        ``adjudicated``. Give the same ``included`` again when measuring a result of this call.
    class_overrides : mapping lesion id -> "wm" | "cortical" | "mixed", optional
        A reviewer's class decisions: the class sets the portions measured and their reference
        ROIs (computed again when ``reference_labels`` is not given); ``rule_type`` keeps the
        rule's class.

    Returns
    -------
    SessionAnalysis
        New maps, rows and candidates; timings of the steps run again.

    Raises
    ------
    LesionInputError
        Maps of another shape, a lesion id the analysis does not have, a candidate that was not
        left to adjudication, a class that is not one of the three, or the checks of
        :func:`analyse_session` on tissue, QSM and QSM mask.
    """
    t0 = time.perf_counter()
    shape = analysis.lesion_labels.shape
    t = check_tissue(tissue, shape)
    m = _check_mask(qsm_mask, shape, "QSM mask")
    chi = _check_qsm(qsm, shape, m)
    candidates = [dict(c) for c in analysis.candidates]
    lesion_votes = {k: dict(v) for k, v in analysis.lesion_votes.items()}
    labels = analysis.lesion_labels if lesion_labels is None else np.asarray(lesion_labels)
    if labels.shape != shape:
        raise LesionInputError(f"edited lesion labels have shape {labels.shape}, the analysis {shape}")
    labels, adjudicated = _include(analysis, candidates, lesion_votes, labels, included)
    known = {c["lesion"] for c in candidates if c["lesion"] is not None}
    excluded_ids = sorted({int(k) for k in excluded})
    unknown = [k for k in excluded_ids if k not in known]
    if unknown:
        raise LesionInputError(f"cannot exclude lesion(s) {unknown}: the analysis has no such lesion")
    overrides = {int(k): v for k, v in (class_overrides or {}).items()}
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise LesionInputError(f"cannot set the class of lesion(s) {unknown}: the analysis has no such lesion")
    present = set(np.unique(labels).tolist()) - {0}
    if present - known:
        raise LesionInputError(f"edited lesion labels hold ids the analysis does not have: {sorted(present - known)}")
    labels = exclude_lesions(labels, excluded_ids).astype(np.int32, copy=False)
    refs = None
    if reference_labels is not None:
        refs = np.asarray(reference_labels)
        if refs.shape != shape:
            raise LesionInputError(f"edited reference labels have shape {refs.shape}, the analysis {shape}")
        bad = [int(v) for v in np.unique(refs) if v and (v % 10 not in (1, 2) or v // 10 not in known)]
        if bad:
            raise LesionInputError(f"edited reference labels hold values that are not ROI ids of this analysis: {bad[:5]}")
        refs = exclude_rois(refs, excluded_ids).astype(np.int32, copy=False)
    timings: dict[str, float] = {"validate": time.perf_counter() - t0}
    raters_of = {c["lesion"]: list(c["raters"]) for c in candidates if c["lesion"] is not None}
    rows, ref_labels = _measure(
        lesion_labels=labels,
        reference_labels=refs,
        tissue=t,
        qsm=chi,
        qsm_mask=m,
        marked=analysis.marked,
        lesion_votes=lesion_votes,
        raters_of=raters_of,
        voxel_size=analysis.voxel_size,
        subject=analysis.subject,
        params=analysis.params,
        progress=progress,
        timings=timings,
        class_overrides=overrides,
        adjudicated=adjudicated,
    )
    candidates = [{**c, "status": EXCLUDED} if c["lesion"] in excluded_ids else c for c in candidates]
    timings["total"] = time.perf_counter() - t0
    _report(progress, 1.0, "done")
    return dataclasses.replace(
        analysis,
        lesion_labels=labels,
        reference_labels=ref_labels,
        rows=rows,
        candidates=candidates,
        timings=timings,
        lesion_votes=lesion_votes,
    )


def _include(
    analysis: SessionAnalysis,
    candidates: list[dict[str, Any]],
    lesion_votes: dict[int, dict[str, str]],
    labels: np.ndarray,
    included: Collection[int],
) -> tuple[np.ndarray, set[int]]:
    """Adjudicated candidates made lesions (``candidates`` and ``lesion_votes`` updated in place):
    (lesion map with them painted, ids of every adjudicated lesion)."""
    wanted = sorted({int(c) for c in included})
    by_number = {c["candidate"]: c for c in candidates}
    adjudicated = {c["lesion"] for c in candidates if c.get("adjudicated") and c["lesion"] is not None}
    fresh = []
    for number in wanted:
        c = by_number.get(number)
        if c is None:
            raise LesionInputError(f"cannot include candidate {number}: the analysis has no such candidate")
        if c.get("adjudicated"):
            continue  # included by an earlier call: its id is already assigned
        if c["status"] != ADJUDICATION:
            raise LesionInputError(f"cannot include candidate {number}: it is {c['status']}, not left to adjudication")
        fresh.append(c)
    if not fresh:
        return labels, adjudicated
    candidate_labels, _ = label_lesions(analysis.marked)
    labels = np.array(labels, dtype=np.int32)
    next_id = max([c["lesion"] for c in candidates if c["lesion"] is not None] or [0]) + 1
    for c in fresh:
        c.update(status=LESION, lesion=next_id, adjudicated=True)
        lesion_votes[next_id] = dict(c.get("votes") or {})
        if not (labels == next_id).any():
            labels[(candidate_labels == c["candidate"]) & (labels == 0)] = next_id
        adjudicated.add(next_id)
        next_id += 1
    return labels, adjudicated
