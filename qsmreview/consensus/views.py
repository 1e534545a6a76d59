"""The consensus pages: a session's consensus (lesion table, who marked what, the rule's class and
the raters' majority, adjudication and class decisions), its QC page (exclude and restore lesions
with a reason), its QC viewer (QSM with the label maps; drawing tools for admins), and the study's
consensus and agreement overview.

The study's admins and PI read them (PIs without forms); for raters and anyone else they do not
exist (404). Forms post to the page itself and call one service; a refusal is shown as a message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from qsmreview.access import can_manage_study, consensus_decisions_visible_to, sessions_with_consensus_visible_to
from qsmreview.api.ids import id_problem
from qsmreview.consensus import selectors
from qsmreview.consensus.models import CandidateStatus, DecisionKind, ExclusionReason, LesionType
from qsmreview.consensus.services import (
    consensus_adjudicate,
    consensus_decide_class,
    consensus_exclude,
    consensus_remeasure,
    consensus_request,
    consensus_revert,
    effective_decisions,
)
from qsmreview.consensus.study_settings import consensus_settings_update, settings_history, settings_rows
from qsmreview.errors import DomainError, NotFound, ValidationFailed
from qsmreview.studies.models import Session


def _session_or_404(request: HttpRequest, session_id: int) -> Session:
    session = (
        sessions_with_consensus_visible_to(request.user)
        .select_related("subject__study")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise Http404("no such session")
    return session


def _int(request: HttpRequest, name: str) -> int:
    value, problem = id_problem(request.POST.get(name, ""))
    if value is None:
        raise ValidationFailed(f"{name} {problem}", field=name)
    return value


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested agreement dict as (dotted name, value) rows for a table."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, float):
        return [(prefix, round(value, 4))]
    return [(prefix, value)]


def _post(request: HttpRequest, session: Session) -> None:
    """Do what the form asks (one service call); raise DomainError on refusal."""
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    if action == "request":
        job = consensus_request(by=request.user, session=session)
        messages.success(request, f"Queued consensus job #{job.pk}.")
        return
    run = selectors.session_consensus(request.user, session).run
    if run is None:
        raise ValidationFailed("this session has no consensus yet")
    if action == "class":
        consensus_decide_class(
            by=request.user, run=run, lesion=_int(request, "lesion"),
            lesion_type=request.POST.get("lesion_type", ""), reason=reason,
        )
    elif action == "adjudicate":
        consensus_adjudicate(
            by=request.user, run=run, candidate=_int(request, "candidate"),
            include=request.POST.get("include") == "yes", reason=reason,
        )
    elif action == "exclude":
        consensus_exclude(
            by=request.user, run=run, lesion=_int(request, "lesion"),
            reason_code=request.POST.get("reason_code", ""), reason=reason,
        )
    elif action == "revert":
        decision = consensus_decisions_visible_to(request.user).filter(
            pk=_int(request, "decision"), run=run
        ).first()
        if decision is None:
            raise NotFound("no such decision")
        consensus_revert(by=request.user, decision=decision, reason=reason)
    elif action == "remeasure":
        consensus_remeasure(by=request.user, run=run)
    else:
        raise ValidationFailed(f"unknown action {action!r}")
    messages.success(request, "Saved; the measurements were recomputed.")


def _handle_post(request: HttpRequest, session: Session, target: str) -> HttpResponse:
    try:
        _post(request, session)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(target, session_id=session.pk)


def _context(request: HttpRequest, session: Session) -> dict[str, Any]:
    data = selectors.session_consensus(request.user, session)
    decisions = list(data.run.decisions.select_related("by").order_by("created_at", "pk")) if data.run else []
    in_effect = {d.pk for d in effective_decisions(data.run)} if data.run else set()
    reverted = {d.reverts_id for d in decisions if d.kind == DecisionKind.REVERT}
    candidates = list(data.run.candidates.order_by("number")) if data.run else []
    adjudicated = {d.candidate: d for d in decisions if d.kind == DecisionKind.ADJUDICATE and d.pk in in_effect}
    for candidate in candidates:
        candidate.decided = adjudicated.get(candidate.number)  # type: ignore[attr-defined]
    return {
        "study": session.subject.study,
        "session": session,
        "data": data,
        "run": data.run,
        "rows": data.rows,
        "candidates": candidates,
        "open_candidates": [c for c in candidates if c.status == CandidateStatus.ADJUDICATION],
        "decisions": decisions,
        "in_effect": in_effect,
        "reverted": reverted,
        "exclusions": {d.lesion: d for d in decisions if d.kind == DecisionKind.EXCLUDE and d.pk in in_effect},
        "agreement": data.run.agreement if data.run else {},
        "params": flatten(data.run.params) if data.run else [],
        "can_manage": can_manage_study(request.user, session.subject.study),
        "lesion_types": LesionType.choices,
        "exclusion_reasons": ExclusionReason.choices,
    }


@login_required
def session_consensus(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    if request.method == "POST":
        return _handle_post(request, session, "session-consensus")
    return render(request, "consensus/session.html", _context(request, session))


@login_required
def session_qc(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    if request.method == "POST":
        return _handle_post(request, session, "session-consensus-qc")
    context = _context(request, session)
    data = context["data"]
    context["qc_lesions"] = selectors.qc_lesions(data.run, data.measurements) if data.run and data.measurements else []
    return render(request, "consensus/qc.html", context)


#: Series a second, synchronised panel of the QC viewer may show (the session's current ones).
SECOND_PANEL_KINDS = ("t2star_mag", "flair", "t1_wmn", "t1_csfn")


def _viewer_config(request: HttpRequest, session: Session, run: Any, can_manage: bool) -> dict[str, Any]:
    """What qc_viewer.js needs: the run's QSM display copy (if the user may see it), the API
    routes of the run, the exclusion reasons and whether the tools are shown."""
    from qsmreview.access import series_visible_to

    qsm = None
    if run is not None and run.qsm_series_id and series_visible_to(request.user).filter(pk=run.qsm_series_id).exists():
        qsm = {
            "id": run.qsm_series_id,
            "url": reverse("api-series-display", kwargs={"pk": run.qsm_series_id}),
            "name": f"qsm-{run.qsm_series_id}.nii",
            "kind": "qsm",
            "units": "ppm",
        }
    second = []
    if qsm is not None:
        anatomy = (
            series_visible_to(request.user)
            .filter(session=session, is_current=True, kind__in=SECOND_PANEL_KINDS)
            .order_by("kind", "label", "space")
        )
        second = [
            {
                "id": series.pk,
                "title": " ".join(p for p in (series.get_kind_display(), series.label, series.space) if p),
                "url": reverse("api-series-display", kwargs={"pk": series.pk}),
                "name": f"series-{series.pk}.nii",
                "kind": series.kind,
            }
            for series in anatomy
        ]
    urls: dict[str, str] = {}
    if run is not None:
        for key, name in (
            ("qc", "api-consensus-qc"),
            ("lesion_labels", "api-consensus-lesion-labels"),
            ("reference_labels", "api-consensus-reference-labels"),
            ("vessels", "api-consensus-vessel-proposals"),
            ("voxel_edits", "api-consensus-voxel-edit"),
            ("vessel_applications", "api-consensus-vessel-application"),
            ("exclusions", "api-consensus-exclusion"),
        ):
            urls[key] = reverse(name, kwargs={"pk": run.pk})
        urls["revert"] = reverse("api-consensus-revert", kwargs={"pk": 1}).replace("/1/", "/{id}/")
    return {
        "run": run.pk if run is not None else None,
        "can_manage": can_manage,
        "qsm": qsm,
        "second": second,
        "vessels": bool(run is not None and run.vessel_proposals),
        "urls": urls,
        "exclusion_reasons": [{"value": v, "label": label} for v, label in ExclusionReason.choices],
    }


@login_required
def session_qc_viewer(request: HttpRequest, session_id: int) -> HttpResponse:
    """QC in the viewer: QSM with the consensus lesions, reference ROIs and vessel proposals
    overlaid, the lesion list, and (admins only) the tools that edit them through the API."""
    session = _session_or_404(request, session_id)
    data = selectors.session_consensus(request.user, session)
    can_manage = can_manage_study(request.user, session.subject.study)
    return render(
        request,
        "consensus/qc_viewer.html",
        {
            "study": session.subject.study,
            "session": session,
            "data": data,
            "run": data.run,
            "can_manage": can_manage,
            "config": _viewer_config(request, session, data.run, can_manage),
        },
    )


def _setting_value(raw: str, default: Any) -> Any:
    """A form field as the setting's type: blank majority = null; numbers as numbers (the service
    validates ranges and names the setting)."""
    text = raw.strip()
    if not text:
        return None
    try:
        return int(text) if isinstance(default, int) and not isinstance(default, bool) else float(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a number") from None


def _post_settings(request: HttpRequest, study: Any) -> None:
    rows = {r["name"]: r for r in settings_rows(study)}
    changed: dict[str, Any] = {}
    for name, row in rows.items():
        if name not in request.POST:
            continue
        kind = row["value"] if row["value"] is not None else (row["default"] if row["default"] is not None else 0)
        value = _setting_value(request.POST[name], kind)
        if value != row["value"]:
            changed[name] = value
    if not changed:
        raise ValidationFailed("nothing changed")
    consensus_settings_update(by=request.user, study=study, values=changed, reason=request.POST.get("reason", ""))
    messages.success(request, f"Settings saved ({', '.join(sorted(changed))}); sessions with a consensus compute it again.")


@login_required
def study_consensus(request: HttpRequest, study_id: int) -> HttpResponse:
    try:
        study = selectors.study_for(request.user, study_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.method == "POST":
        try:
            _post_settings(request, study)
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("study-consensus", study_id=study.pk)
    current = list(selectors.current_runs(study))
    runs = {r.session_id: r for r in current}
    sessions = Session.objects.filter(subject__study=study).select_related("subject").order_by("subject__code", "label")
    rows = [{"session": s, "run": runs.get(s.pk)} for s in sessions]
    params = current[0].agreement.get("parameters", {}) if current else {}
    return render(
        request,
        "consensus/study.html",
        {
            "study": study,
            "rows": rows,
            "pooled": selectors.pooled_agreement(current),
            "agreement_params": params,
            "settings": settings_rows(study),
            "settings_history": settings_history(study)[:20],
            "can_manage": can_manage_study(request.user, study),
        },
    )
