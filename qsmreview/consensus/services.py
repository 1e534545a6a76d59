"""Consensus workflows: request a run, run it, and the admins' decisions and QC actions on it.

Every service takes the acting user (``by``) and checks it with :mod:`qsmreview.access`: the
study's admins request runs, decide classes, adjudicate and do QC (PIs read only, raters and
outsiders do not see consensus at all: :class:`~qsmreview.errors.NotFound`); a job's runner acts
as the system. Results are stored with the store-then-commit path of series
(:mod:`qsmreview.studies.services.series`): the label maps go to storage first, then one
transaction creates the run, its candidates, its first measurement set and its lesion table and
makes it the session's current run; if that fails the files are deleted (what a crash leaves is
removed by the orphan sweep, :mod:`qsmreview.studies.services.orphans`).

Decisions and QC actions never change a stored result: each is a
:class:`~qsmreview.consensus.models.ConsensusDecision` (who, when, why) followed by a new
:class:`~qsmreview.consensus.models.MeasurementSet` computed from the run's first set with every
effective decision applied; a ``revert`` decision undoes an earlier one the same way.
"""

from __future__ import annotations

import gzip
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Max

from qsmreview.access import (
    Actor,
    SystemActor,
    consensus_runs_visible_to,
    require_manage,
    sessions_with_consensus_visible_to,
    system,
    user_or_none,
)
from qsmreview.consensus import compute
from qsmreview.consensus.inputs import ConsensusInputs, all_raters_submitted, consensus_inputs
from qsmreview.consensus.models import (
    Candidate,
    CandidateStatus,
    ConsensusDecision,
    ConsensusRun,
    DecisionKind,
    ExclusionReason,
    LesionRow,
    RaterLesionRow,
    LesionType,
    MeasurementSet,
    RunStatus,
)
from qsmreview.consensus.qc_maps import VOXEL_EDIT_KINDS, apply_voxel_edits, store_vessel_proposals
from qsmreview.consensus.study_settings import study_params
from qsmreview.errors import Conflict, Gone, NotFound, ValidationFailed
from qsmreview.reasons import reason_text
from qsmreview.studies.models import Session
from qsmreview.studies.storage import sha256_of_path, storage_delete_quietly

#: The job kind that computes a session's consensus.
CONSENSUS_KIND = "consensus"
#: Most voxels one removal names.
MAX_REMOVED_VOXELS = 100_000

Report = Callable[[float, str], None]


# --- helpers ---------------------------------------------------------------------------------


def _reason(reason: str | None, *, what: str) -> str:
    return reason_text(reason, missing=f"a reason is required to {what}")


def _require_visible(by: Actor, session: Session) -> None:
    """Raise NotFound unless ``by`` may see the session's consensus (admins, PI, superusers)."""
    if isinstance(by, SystemActor):
        return
    if not sessions_with_consensus_visible_to(by).filter(pk=session.pk).exists():
        raise NotFound("no such session")


def _require_admin(by: Actor, run: ConsensusRun, action: str) -> None:
    if not isinstance(by, SystemActor) and not consensus_runs_visible_to(by).filter(pk=run.pk).exists():
        raise NotFound("no such consensus run")
    require_manage(by, run.session.subject.study_id, action)


def _write_labels(path: Path, labels: np.ndarray, affine: np.ndarray) -> None:
    data = np.asarray(labels)
    dtype = np.int16 if data.size == 0 or int(data.max(initial=0)) < 2**15 else np.int32
    image = nib.Nifti1Image(data.astype(dtype), np.asarray(affine, dtype=np.float64))
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))


def load_labels(field: Any) -> np.ndarray:
    """A stored label map (a measurement set's file) as an int32 array."""
    return load_labels_and_affine(field)[0]


def load_labels_and_affine(field: Any) -> tuple[np.ndarray, np.ndarray]:
    """A stored label map as (int32 array, 4x4 affine)."""
    try:
        fh = field.open("rb")
    except (FileNotFoundError, OSError) as exc:
        raise Gone(f"the label map {field.name} is missing from storage") from exc
    with fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    image = nib.Nifti1Image.from_bytes(raw)
    return np.asarray(image.dataobj).astype(np.int32), np.asarray(image.affine, dtype=np.float64)


def _store_set(
    *,
    run: ConsensusRun,
    lesion_labels: np.ndarray,
    reference_labels: np.ndarray,
    affine: np.ndarray,
    rows: Sequence[dict[str, Any]],
    decision: ConsensusDecision | None,
    applied: list[int],
    stored: list[str],
) -> MeasurementSet:
    """Store both label maps (names appended to ``stored`` for clean-up), then create the set and
    its rows; the caller holds the transaction and makes the set current."""
    number = (run.measurement_sets.aggregate(n=Max("number"))["n"] or 0) + 1
    instance = MeasurementSet(run=run, number=number, decision=decision, decisions_applied=applied)
    with tempfile.TemporaryDirectory(prefix="qsmreview-consensus-") as tmp:
        for field, labels, what in (
            ("lesion_labels", lesion_labels, "lesions"),
            ("reference_labels", reference_labels, "reference"),
        ):
            local = Path(tmp) / f"{what}.nii.gz"
            _write_labels(local, labels, affine)
            sha256, size = sha256_of_path(local)
            with open(local, "rb") as fh:
                getattr(instance, field).save(f"set-{number}_{what}_{uuid.uuid4().hex[:12]}.nii.gz", File(fh), save=False)
            stored.append(getattr(instance, field).name)
            setattr(instance, f"{field}_sha256", sha256)
            setattr(instance, f"{field}_size", size)
    run.measurement_sets.filter(current=True).update(current=False)
    instance.current = True
    instance.save()
    LesionRow.objects.bulk_create(_row(instance, row) for row in rows)
    # The study's statistics read the current measurement sets: recompute them (debounced) once
    # this set is committed.
    from qsmreview.reports.services import statistics_after_change_on_commit

    statistics_after_change_on_commit(
        study_id=run.session.subject.study_id, what=f"measurements {number} of consensus run {run.pk} stored"
    )
    return instance


def _measured(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A core lesion-table row as (the fields of :class:`MeasuredLesion`, the other columns)."""
    columns, extras = compute.split_row(row)
    return {
        "subject": str(columns["subject"] or ""),
        "lesion": int(columns["lesion"]),
        "lesion_type": str(columns["lesion_type"] or ""),
        "portion": str(columns["portion"] or ""),
        "n_voxels": int(columns["n_voxels"] or 0),
        "volume_mm3": float(columns["volume_mm3"] or 0.0),
        "cortical_fraction": columns["cortical_fraction"],
        "lesion_mean_ppm": columns["lesion_mean_ppm"],
        "lesion_sd_ppm": columns["lesion_sd_ppm"],
        "reference_mean_ppm": columns["reference_mean_ppm"],
        "reference_sd_ppm": columns["reference_sd_ppm"],
        "reference_n_voxels": columns["reference_n_voxels"],
        "relative_susceptibility_ppm": columns["relative_susceptibility_ppm"],
    }, {**extras, "raters": list(columns["raters"] or [])}


def _row(measurement_set: MeasurementSet, row: dict[str, Any]) -> LesionRow:
    fields, extras = _measured(row)
    raters = extras.pop("raters")
    excluded = bool(extras.pop("excluded", False))
    reason = str(extras.pop("exclusion_reason", "") or "")
    rule_type = str(extras.pop("rule_type", "") or fields["lesion_type"] or "")
    return LesionRow(
        measurement_set=measurement_set,
        rule_type=rule_type,
        raters=raters,
        excluded=excluded,
        exclusion_reason=reason,
        extras=extras,
        **fields,
    )


def _rater_row(run: ConsensusRun, rater: str, row: dict[str, Any], affine: np.ndarray) -> RaterLesionRow:
    fields, extras = _measured(row)
    for key in ("raters", "adjudicated", "rule_type"):  # one reader: nothing to agree or decide
        extras.pop(key, None)
    if extras.get("centroid_ijk"):  # scanner mm, where the QC viewer puts its crosshair
        ijk = np.asarray(extras["centroid_ijk"], dtype=float)
        extras["centroid_mm"] = [round(float(v), 3) for v in affine[:3, :3] @ ijk + affine[:3, 3]]
    return RaterLesionRow(run=run, rater=rater, extras=extras, **fields)


def _delete(stored: list[str]) -> None:
    storage = MeasurementSet._meta.get_field("lesion_labels").storage
    for name in stored:
        storage_delete_quietly(storage, name)


# --- requesting and running ------------------------------------------------------------------


def _dedupe_key(session: Session, inputs: ConsensusInputs) -> str:
    return f"{CONSENSUS_KIND}:session:{session.pk}:{inputs.digest()}"


def consensus_request(*, by: Actor, session: Session, trigger: str = "requested by an admin") -> Any:
    """Queue a consensus job for ``session`` (the study's admins; the system for automatic runs).

    Returns
    -------
    Job
        The queued job; it runs :func:`consensus_run` on a worker once the transaction commits.

    Raises
    ------
    NotFound
        ``by`` may not see the session's consensus (a rater, an outsider).
    Forbidden
        ``by`` sees it but is not an admin (a PI).
    ValidationFailed
        Inputs missing: fewer than two submitted raters, no tissue labels, off the T2* grid.
    Conflict
        A consensus job on the same inputs is already queued or running.
    """
    from qsmreview.jobs.services import job_submit

    _require_visible(by, session)
    require_manage(by, session.subject.study_id, "compute the consensus")
    inputs = consensus_inputs(session)
    return job_submit(
        kind=CONSENSUS_KIND,
        # An admin's request computes again even on unchanged inputs; automatic triggers do not.
        parameters={"trigger": trigger[:200], "force": not isinstance(by, SystemActor)},
        study=session.subject.study,
        session=session,
        by=by,
        dedupe_key=_dedupe_key(session, inputs),
    )


def consensus_request_quietly(*, session: Session, trigger: str) -> Any:
    """Queue a consensus job as the system if the inputs are complete; None (and nothing queued)
    when they are not or an identical job is already queued. Used by the automatic triggers."""
    try:
        with transaction.atomic():
            return consensus_request(by=system(trigger), session=session, trigger=trigger)
    except (ValidationFailed, Conflict):
        return None


def consensus_after_submit(*, session: Session) -> Any:
    """Called when a rater submits: queue the consensus once every assigned rater has submitted."""
    if not all_raters_submitted(session):
        return None
    return consensus_request_quietly(session=session, trigger="every assigned rater submitted")


def consensus_after_input_change(*, session: Session, what: str) -> Any:
    """Called when a consensus input of the session changed (tissue labels, QSM, brain mask): a
    session with a current consensus gets a new one computed from the new input."""
    if not ConsensusRun.objects.filter(session=session, current=True).exists():
        return None
    return consensus_request_quietly(session=session, trigger=f"{what} changed")


def _core_params(run: ConsensusRun) -> dict[str, Any]:
    """The run's recorded parameters of the core (``ConsensusParams``), without the app's own."""
    return {k: v for k, v in run.params.items() if k != "qsm_erosion_mm"}


def up_to_date_run(session: Session, inputs: ConsensusInputs) -> ConsensusRun | None:
    """The session's current run if it was computed from exactly these inputs, else None."""
    run = ConsensusRun.objects.filter(session=session, current=True, status=RunStatus.SUCCEEDED).first()
    if run is None:
        return None
    same = (
        [(r["rater"], r["revision"]) for r in run.revisions]
        == [(name, r.pk) for name, r in sorted(inputs.revisions.items())]
        and run.tissue_series_id == inputs.tissue.pk
        and run.qsm_series_id == (inputs.qsm.pk if inputs.qsm else None)
        and run.brain_mask_series_id == (inputs.brain_mask.pk if inputs.brain_mask else None)
        and _core_params(run)
        == compute.plain(study_params(session.subject.study).as_dict())
    )
    return run if same else None


def consensus_run(
    *,
    by: Actor,
    session: Session,
    job: Any = None,
    trigger: str = "",
    params: Any = None,
    progress: Report | None = None,
    force: bool = True,
) -> ConsensusRun:
    """Compute the session's consensus from its current inputs and store it as the current run.

    Loads the submitted revisions' masks and votes, the current tissue labels and (when there is
    one) the current QSM with the brain mask eroded by 2.5 mm, calls
    :func:`qsmreview.lesions.pipeline.analyse_session`, and stores the label maps, candidates,
    agreement and lesion table atomically. The previous current run stays, no longer current.
    Without ``force`` (automatic triggers), a current run computed from exactly these inputs is
    returned as it is (e.g. the demo loader's, computed before the worker got the job).

    Raises
    ------
    NotFound / Forbidden
        ``by`` may not compute it (see :func:`consensus_request`).
    ValidationFailed
        Missing inputs, or the core refused them (its message); a failed run is recorded.
    """
    from qsmreview.lesions.errors import LesionInputError

    _require_visible(by, session)
    require_manage(by, session.subject.study_id, "compute the consensus")
    report = progress or (lambda fraction, stage: None)
    report(0.02, "loading inputs")
    inputs = consensus_inputs(session)
    if not force:
        current = up_to_date_run(session, inputs)
        if current is not None:  # e.g. the demo loader computed it before the worker got the job
            report(0.99, f"consensus run {current.pk} is up to date")
            return current
    params = params or study_params(session.subject.study)
    record: dict[str, Any] = {
        "session": session,
        "job": job,
        "requested_by": user_or_none(by) or (job.created_by if job is not None else None),
        "trigger": trigger[:200],
        "revisions": [
            {"revision": r.pk, "assignment": r.assignment_id, "rater": name, "sha256": r.sha256}
            for name, r in sorted(inputs.revisions.items())
        ],
        "tissue_series": inputs.tissue,
        "tissue_version": inputs.tissue.version,
        "tissue_sha256": inputs.tissue.sha256,
        "qsm_series": inputs.qsm,
        "qsm_version": inputs.qsm.version if inputs.qsm else None,
        "qsm_sha256": inputs.qsm.sha256 if inputs.qsm else "",
        "brain_mask_series": inputs.brain_mask,
        "brain_mask_sha256": inputs.brain_mask.sha256 if inputs.brain_mask else "",
        "params": {**compute.plain(params.as_dict()), "qsm_erosion_mm": compute.QSM_EROSION_MM},
        "code_version": compute.code_version(),
    }
    try:
        loaded = compute.load_inputs(inputs)
        report(0.1, "consensus, classes, reference ROIs, measurements")

        def scaled(fraction: float, stage: str) -> None:
            report(0.1 + 0.8 * min(max(float(fraction), 0.0), 1.0), stage)

        analysis = compute.analyse(loaded, subject=session.subject.code, params=params, progress=scaled, per_rater=True)
    except LesionInputError as exc:
        ConsensusRun.objects.create(status=RunStatus.FAILED, error=str(exc), **record)
        raise ValidationFailed(f"{session}: {exc}") from exc
    report(0.92, "storing results")
    rows = [{**row, "rule_type": row.get("lesion_type", "")} for row in analysis.rows]
    summary = analysis.summary()
    stored: list[str] = []
    try:
        with transaction.atomic():
            Session.objects.select_for_update().filter(pk=session.pk).first()
            ConsensusRun.objects.filter(session=session, current=True).update(current=False)
            run = ConsensusRun.objects.create(
                status=RunStatus.SUCCEEDED,
                agreement=compute.plain(analysis.agreement),
                summary={
                    "summary": summary,
                    "timings_s": compute.plain(analysis.timings),
                    "vessel_proposal_voxels": (
                        None if analysis.vessel_proposals is None else int(np.count_nonzero(analysis.vessel_proposals))
                    ),
                    # Each rater's own lesions were measured (their rows, possibly none, are stored).
                    "rater_lesions": {
                        rater: len({r["lesion"] for r in table}) for rater, table in sorted(analysis.rater_rows.items())
                    },
                },
                current=True,
                **record,
            )
            Candidate.objects.bulk_create(_candidate(run, i, c) for i, c in enumerate(analysis.candidates, start=1))
            RaterLesionRow.objects.bulk_create(
                _rater_row(run, rater, row, loaded.affine)
                for rater, rater_rows in analysis.rater_rows.items()
                for row in rater_rows
            )
            store_vessel_proposals(run, analysis.vessel_proposals, loaded.affine, stored)
            _store_set(
                run=run,
                lesion_labels=analysis.lesion_labels,
                reference_labels=analysis.reference_labels,
                affine=loaded.affine,
                rows=rows,
                decision=None,
                applied=[],
                stored=stored,
            )
    except IntegrityError as exc:
        _delete(stored)
        raise Conflict(f"{session}: another consensus run was stored at the same time; retry") from exc
    except BaseException:
        _delete(stored)
        raise
    report(0.99, "done")
    return run


def _candidate(run: ConsensusRun, index: int, data: dict[str, Any]) -> Candidate:
    plain = compute.plain(dict(data))
    number = plain.pop("candidate", None) or index
    status = str(plain.pop("status", CandidateStatus.REJECTED))
    lesion = plain.pop("lesion", None)
    voxels = plain.get("consensus_voxels") or plain.get("union_voxels") or 0
    return Candidate(
        run=run,
        number=int(number),
        status=status,
        raters=list(plain.pop("raters", []) or []),
        lesion=int(lesion) if isinstance(lesion, (int, float)) and lesion else None,
        n_voxels=int(voxels),
        data=plain,
    )


# --- decisions and QC ------------------------------------------------------------------------


def effective_decisions(run: ConsensusRun) -> list[ConsensusDecision]:
    """The run's decisions in order, without reverts and the decisions they undid."""
    decisions = list(run.decisions.order_by("created_at", "pk"))
    undone = {d.reverts_id for d in decisions if d.kind == DecisionKind.REVERT}
    return [d for d in decisions if d.kind != DecisionKind.REVERT and d.pk not in undone]


def _base_set(run: ConsensusRun) -> MeasurementSet:
    base = run.measurement_sets.filter(number=1).first()
    if base is None:
        raise ValidationFailed(f"consensus run {run.pk} has no measurements (it failed)")
    return base


def _lesion_ids(run: ConsensusRun) -> set[int]:
    """The run's lesions now: the first set's, and those its decisions added (adjudication)."""
    current = run.measurement_sets.filter(current=True).first() or _base_set(run)
    return set(_base_set(run).rows.values_list("lesion", flat=True)) | set(current.rows.values_list("lesion", flat=True))


def _recompute(run: ConsensusRun, decision: ConsensusDecision | None, by: Actor) -> MeasurementSet:
    """A new current measurement set: the run's first set with every effective decision applied.

    Exclusions change rows only (an excluded lesion stays in the table, marked, and out of
    statistics). Everything else is measured again by the core
    (:func:`qsmreview.lesions.pipeline.remeasure`) on the run's own recorded inputs: a decided
    class sets the portions measured and their reference ROIs (``rule_type`` keeps the rule's
    class), an adjudicated candidate that is included becomes a lesion delineated by its raters'
    marks, and removed and added voxels
    (:func:`~qsmreview.consensus.qc_maps.apply_voxel_edits`) edit the label maps.
    """
    base = _base_set(run)
    decisions = effective_decisions(run)
    voxel_edits = [d for d in decisions if d.kind in VOXEL_EDIT_KINDS]
    classes = {d.lesion: d.value["class"] for d in decisions if d.kind == DecisionKind.CLASS}
    included = sorted(d.candidate for d in decisions if d.kind == DecisionKind.ADJUDICATE and d.value.get("include"))
    excluded = {d.lesion: d.value["reason"] for d in decisions if d.kind == DecisionKind.EXCLUDE}
    rule = {r.lesion: r.rule_type for r in base.rows.all()}
    if voxel_edits or classes or included:
        lesions, reference, affine, rows = _remeasure(run, voxel_edits=voxel_edits, classes=classes, included=included)
    else:  # exclusions only: the first set's maps and rows, marked
        lesions, affine = load_labels_and_affine(base.lesion_labels)
        reference = load_labels(base.reference_labels)
        rows = [_row_dict(r) for r in base.rows.order_by("lesion", "portion")]
    for row in rows:
        row["rule_type"] = rule.get(row["lesion"]) or row.get("rule_type") or row["lesion_type"]
        row["excluded"] = row["lesion"] in excluded
        row["exclusion_reason"] = excluded.get(row["lesion"], "")
    stored: list[str] = []
    try:
        with transaction.atomic():
            ConsensusRun.objects.select_for_update().filter(pk=run.pk).first()
            return _store_set(
                run=run,
                lesion_labels=lesions,
                reference_labels=reference,
                affine=affine,
                rows=rows,
                decision=decision,
                applied=[d.pk for d in decisions],
                stored=stored,
            )
    except IntegrityError as exc:
        _delete(stored)
        raise Conflict("the measurements of this run changed at the same time; retry") from exc
    except BaseException:
        _delete(stored)
        raise


def _row_dict(row: LesionRow) -> dict[str, Any]:
    data = {k: getattr(row, k) for k in compute.ROW_COLUMNS}
    data.update(row.extras or {})
    return data


def _run_inputs(run: ConsensusRun) -> ConsensusInputs:
    """The exact inputs a run recorded (immutable revisions and series), for measuring again."""
    from qsmreview.annotations.models import Revision

    by_id = {r.pk: r for r in Revision.objects.filter(pk__in=[x["revision"] for x in run.revisions])}
    missing = [x["revision"] for x in run.revisions if x["revision"] not in by_id]
    if missing or run.tissue_series is None or (run.qsm_sha256 and run.qsm_series is None):
        raise Gone(f"an input of consensus run {run.pk} was deleted; compute a new consensus")
    return ConsensusInputs(
        revisions={x["rater"]: by_id[x["revision"]] for x in run.revisions},
        tissue=run.tissue_series,
        qsm=run.qsm_series,
        brain_mask=run.brain_mask_series,
        grid=run.tissue_series,
    )


def _remeasure(
    run: ConsensusRun,
    *,
    voxel_edits: Sequence[ConsensusDecision],
    classes: dict[int, str],
    included: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The run's analysis recomputed from its recorded inputs and parameters (the same result, as
    inputs are immutable), then measured again by the core with the decisions in effect:
    (lesion labels, reference labels, the grid's affine, rows).

    Decided classes and included candidates first redraw the reference ROIs by the rules (a
    lesion decided WM gets a WM donut; a new lesion gets its reference, and its gap is kept out of
    its neighbours' references); voxel edits (:func:`~qsmreview.consensus.qc_maps.apply_voxel_edits`:
    removed voxels, voxels added to a reference ROI) are then made on those maps, which are
    measured as edited."""
    from qsmreview.lesions.errors import LesionInputError
    from qsmreview.lesions.params import ConsensusParams
    from qsmreview.lesions.pipeline import remeasure

    loaded = compute.load_inputs(_run_inputs(run))
    params = ConsensusParams.from_dict(_core_params(run))
    measured = {"qsm": loaded.qsm, "qsm_mask": loaded.qsm_mask, "included": included, "class_overrides": classes}
    try:
        analysis = compute.analyse(
            loaded, subject=run.session.subject.code, params=params, progress=None, propose_vessels=False
        )
        if classes or included:
            analysis = remeasure(analysis, loaded.tissue, **measured)
        lesions = analysis.lesion_labels.copy()
        reference = analysis.reference_labels.copy()
        apply_voxel_edits(voxel_edits, lesions, reference)
        result = remeasure(analysis, loaded.tissue, lesion_labels=lesions, reference_labels=reference, **measured)
    except LesionInputError as exc:
        raise ValidationFailed(str(exc)) from exc
    return result.lesion_labels, result.reference_labels, loaded.affine, [dict(r) for r in result.rows]


def _decide(run: ConsensusRun, by: Actor, **fields: Any) -> tuple[ConsensusDecision, MeasurementSet]:
    with transaction.atomic():
        decision = ConsensusDecision.objects.create(
            run=run,
            by=user_or_none(by),
            by_label=by.get_username() if isinstance(by, SystemActor) else "",
            **fields,
        )
        measurements = _recompute(run, decision, by)
    return decision, measurements


def _succeeded(run: ConsensusRun) -> None:
    if run.status != RunStatus.SUCCEEDED:
        raise ValidationFailed(f"consensus run {run.pk} failed; there is nothing to decide on")


def _lesion(run: ConsensusRun, lesion: int) -> int:
    if lesion not in _lesion_ids(run):
        raise ValidationFailed(f"consensus run {run.pk} has no lesion {lesion}", field="lesion")
    return lesion


def consensus_decide_class(
    *, by: Actor, run: ConsensusRun, lesion: int, lesion_type: str, reason: str
) -> ConsensusDecision:
    """Set a consensus lesion's class (the study's admins); the rule's class stays recorded.

    Raises
    ------
    NotFound / Forbidden
        Not visible (raters, outsiders) / not an admin (PI).
    ValidationFailed
        Unknown lesion or class, no reason.
    """
    _require_admin(by, run, "decide lesion classes")
    _succeeded(run)
    if lesion_type not in LesionType.values:
        raise ValidationFailed(f"lesion_type must be one of {', '.join(LesionType.values)}", field="lesion_type")
    text = _reason(reason, what="decide a lesion's class")
    _lesion(run, lesion)
    decision, _ = _decide(run, by, kind=DecisionKind.CLASS, lesion=lesion, value={"class": lesion_type}, reason=text)
    return decision


def consensus_adjudicate(
    *, by: Actor, run: ConsensusRun, candidate: int, include: bool, reason: str
) -> ConsensusDecision:
    """Decide a candidate the rule left to adjudication: include it as a lesion (delineated by the
    union of its raters' marks and measured, see :func:`_recompute`) or not."""
    _require_admin(by, run, "adjudicate lesions")
    _succeeded(run)
    text = _reason(reason, what="adjudicate a candidate")
    row = run.candidates.filter(number=candidate).first()
    if row is None:
        raise ValidationFailed(f"consensus run {run.pk} has no candidate {candidate}", field="candidate")
    if row.status != CandidateStatus.ADJUDICATION:
        raise ValidationFailed(
            f"candidate {candidate} is {row.get_status_display().lower()}, not left to adjudication", field="candidate"
        )
    done = [d for d in effective_decisions(run) if d.kind == DecisionKind.ADJUDICATE and d.candidate == candidate]
    if done:
        raise Conflict(f"candidate {candidate} is already adjudicated (decision {done[0].pk}); revert that first")
    decision, _ = _decide(
        run, by, kind=DecisionKind.ADJUDICATE, candidate=candidate, value={"include": bool(include)}, reason=text
    )
    return decision


def consensus_exclude(
    *, by: Actor, run: ConsensusRun, lesion: int, reason_code: str, reason: str
) -> ConsensusDecision:
    """Exclude a lesion from the measurements (QC; the study's admins): a vessel, an artifact,
    eroded away, other. The lesion stays in the table, marked excluded; reversible."""
    _require_admin(by, run, "exclude lesions")
    _succeeded(run)
    if reason_code not in ExclusionReason.values:
        raise ValidationFailed(
            f"reason_code must be one of {', '.join(ExclusionReason.values)}", field="reason_code"
        )
    text = _reason(reason, what="exclude a lesion")
    _lesion(run, lesion)
    if any(d.kind == DecisionKind.EXCLUDE and d.lesion == lesion for d in effective_decisions(run)):
        raise Conflict(f"lesion {lesion} is already excluded; restore it first")
    decision, _ = _decide(run, by, kind=DecisionKind.EXCLUDE, lesion=lesion, value={"reason": reason_code}, reason=text)
    return decision


def consensus_remove_voxels(
    *,
    by: Actor,
    run: ConsensusRun,
    target: str,
    voxels: Sequence[Sequence[int]],
    reason: str,
    lesion: int | None = None,
) -> ConsensusDecision:
    """Remove voxels from a lesion (``target="lesion"``, ``lesion`` its id) or from the reference
    ROIs (``target="reference"``), then measure again (QC; the study's admins). Reversible."""
    _require_admin(by, run, "edit lesions and reference ROIs")
    _succeeded(run)
    if target not in ("lesion", "reference"):
        raise ValidationFailed("target must be lesion or reference", field="target")
    text = _reason(reason, what="remove voxels")
    if target == "lesion":
        if lesion is None:
            raise ValidationFailed("name the lesion to remove voxels from", field="lesion")
        _lesion(run, lesion)
    ijk = [list(v) for v in voxels]
    if not ijk:
        raise ValidationFailed("name at least one voxel", field="voxels")
    if len(ijk) > MAX_REMOVED_VOXELS:
        raise ValidationFailed(f"at most {MAX_REMOVED_VOXELS} voxels at once", field="voxels")
    current = run.measurement_sets.filter(current=True).first() or _base_set(run)
    labels = load_labels(current.lesion_labels if target == "lesion" else current.reference_labels)
    shape = labels.shape
    for v in ijk:
        if len(v) != 3 or not all(isinstance(c, int) and not isinstance(c, bool) for c in v):
            raise ValidationFailed("each voxel is [i, j, k], three whole numbers", field="voxels")
        if not all(0 <= c < n for c, n in zip(v, shape)):
            raise ValidationFailed(f"voxel {v} is outside the {'x'.join(map(str, shape))} grid", field="voxels")
    idx = np.asarray(ijk, dtype=np.int64)
    values = labels[idx[:, 0], idx[:, 1], idx[:, 2]]
    hit = values == lesion if target == "lesion" else values != 0
    if not hit.any():
        where = f"lesion {lesion}" if target == "lesion" else "any reference ROI"
        raise ValidationFailed(f"none of these voxels is in {where} now: nothing to remove", field="voxels")
    decision, _ = _decide(
        run,
        by,
        kind=DecisionKind.REMOVE_VOXELS,
        lesion=lesion if target == "lesion" else None,
        value={"target": target, "voxels": ijk},
        reason=text,
    )
    return decision


def consensus_revert(*, by: Actor, decision: ConsensusDecision, reason: str) -> ConsensusDecision:
    """Undo a decision (restore an excluded lesion, take back a class or voxel edit): a new
    ``revert`` decision and a new measurement set; the undone decision stays in the record."""
    run = decision.run
    _require_admin(by, run, "revert decisions")
    text = _reason(reason, what="revert a decision")
    if decision.kind == DecisionKind.REVERT:
        raise ValidationFailed("a revert cannot be reverted; decide again instead", field="decision")
    if ConsensusDecision.objects.filter(reverts=decision).exists():
        raise Conflict(f"decision {decision.pk} is already reverted")
    try:
        revert, _ = _decide(
            run,
            by,
            kind=DecisionKind.REVERT,
            reverts=decision,
            lesion=decision.lesion,
            candidate=decision.candidate,
            reason=text,
        )
    except IntegrityError as exc:
        raise Conflict(f"decision {decision.pk} is already reverted") from exc
    return revert


def consensus_remeasure(*, by: Actor, run: ConsensusRun) -> MeasurementSet:
    """Measure the run again with every effective decision applied (a new measurement set)."""
    _require_admin(by, run, "recompute measurements")
    _succeeded(run)
    return _recompute(run, None, by)


__all__ = [
    "CONSENSUS_KIND",
    "consensus_adjudicate",
    "consensus_after_input_change",
    "consensus_after_submit",
    "consensus_decide_class",
    "consensus_exclude",
    "consensus_remeasure",
    "consensus_remove_voxels",
    "consensus_request",
    "consensus_revert",
    "consensus_run",
]
