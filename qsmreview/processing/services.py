"""Submitting processing jobs for one session or a whole study.

Each submission checks the caller's rights and the inputs at once (so a job is refused with a
message instead of failing later on a worker), builds the job's parameters from the study's
protocol, and hands it to :func:`qsmreview.jobs.services.job_submit`, which refuses a second
identical job while one is queued or running.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from qsmreview.errors import Conflict, ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.jobs.services import job_submit
from qsmreview.processing import inputs
from qsmreview.processing.protocol import qsm_parameters
from qsmreview.studies.models import Session, Study
from qsmreview.access import Actor, require_manage

QSM = "qsm"
COREGISTER = "coregister"
TISSUE = "tissue"
BRAIN_MASK = "brain_mask"
#: The processing job kinds, in the order a session is usually processed.
PROCESSING_KINDS = (COREGISTER, BRAIN_MASK, TISSUE, QSM)

_TISSUE_DEFAULTS = {"source": "t1_wmn", "scheme": "freesurfer", "beta": 0.1}


def _parameters(kind: str, session: Session, overrides: dict[str, Any] | None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    if kind == QSM:
        inputs.qsm_inputs(session)
        return qsm_parameters(session.subject.study.protocol, overrides)
    if kind == COREGISTER:
        if overrides:
            raise ValidationFailed("coregistration takes no parameters", field="parameters")
        inputs.magnitude(session)
        inputs.coregistration_sources(session)
        return {}
    if kind == BRAIN_MASK:
        if overrides:
            raise ValidationFailed("brain mask takes no parameters", field="parameters")
        inputs.magnitude(session)
        return {}
    if kind == TISSUE:
        unknown = sorted(set(overrides) - set(_TISSUE_DEFAULTS))
        if unknown:
            raise ValidationFailed(f"unknown tissue parameter(s): {', '.join(unknown)}", field="parameters")
        params = {**_TISSUE_DEFAULTS, **overrides}
        if params["scheme"] not in ("freesurfer", "synthseg", "fast"):
            raise ValidationFailed("scheme must be freesurfer, synthseg or fast", field="parameters")
        if params["source"] not in ("t1_wmn", "t1_csfn", "labels"):  # before any lookup by it
            raise ValidationFailed(
                f"source must be t1_wmn, t1_csfn or labels, got {params['source']!r}", field="parameters"
            )
        beta = params["beta"]
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < math.inf:
            raise ValidationFailed(f"beta must be a number >= 0, got {beta!r}", field="parameters")
        inputs.tissue_source(session, params["source"])
        if params["source"] != "labels":
            inputs.magnitude(session)
        return params
    raise ValidationFailed(
        f"unknown processing kind {kind!r}; use one of {', '.join(PROCESSING_KINDS)}", field="kind"
    )


def _dedupe_key(kind: str, session: Session, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return f"{kind}:session:{session.pk}:{digest}"


def processing_submit(
    *, session: Session, kind: str, by: Actor, parameters: dict[str, Any] | None = None
) -> Job:
    """Queue one processing job of ``kind`` for ``session``; only the study's admins may."""
    study = session.subject.study
    require_manage(by, study, "run processing jobs")
    params = _parameters(kind, session, parameters)
    return job_submit(
        kind=kind,
        parameters=params,
        study=study,
        session=session,
        by=by,
        dedupe_key=_dedupe_key(kind, session, params),
    )


@dataclass
class BatchResult:
    submitted: list[Job] = field(default_factory=list)
    skipped: list[tuple[Session, str]] = field(default_factory=list)


def processing_submit_study(
    *, study: Study, kind: str, by: Actor, parameters: dict[str, Any] | None = None
) -> BatchResult:
    """Queue ``kind`` for every session of the study that has its inputs.

    Sessions that lack inputs, or already have an identical job queued or running, are skipped
    with the reason; the others are submitted, each as its own job.
    """
    require_manage(by, study, "run processing jobs")
    if kind not in PROCESSING_KINDS:
        raise ValidationFailed(
            f"unknown processing kind {kind!r}; use one of {', '.join(PROCESSING_KINDS)}", field="kind"
        )
    result = BatchResult()
    sessions = Session.objects.filter(subject__study=study).select_related("subject__study")
    for session in sessions.order_by("subject__code", "label"):
        try:
            with transaction.atomic():
                result.submitted.append(
                    processing_submit(session=session, kind=kind, by=by, parameters=parameters)
                )
        except (ValidationFailed, Conflict) as exc:
            if exc.field == "parameters":
                raise
            result.skipped.append((session, exc.message))
    return result
