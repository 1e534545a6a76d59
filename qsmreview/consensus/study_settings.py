"""A study's consensus settings: the thresholds of the rules, per study, with the reference
study's defaults (:class:`qsmreview.lesions.params.ConsensusParams`).

The minimum lesion diameter is the study's own field (``Study.min_lesion_diameter_mm``, which the
raters' viewer also uses); every other tunable threshold is kept in :class:`ConsensusSettings`
versions (the newest in effect, older ones the audit trail). A change queues the consensus again
in every session that has one (its parameters are an input of the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from qsmreview.access import Actor, require_manage, user_or_none
from qsmreview.consensus import selectors
from qsmreview.consensus.models import ConsensusRun, ConsensusSettings
from qsmreview.errors import ValidationFailed
from qsmreview.lesions.errors import LesionInputError
from qsmreview.lesions.params import ConsensusParams
from qsmreview.reasons import reason_text
from qsmreview.studies.models import Study


@dataclass(frozen=True)
class Setting:
    name: str
    unit: str
    meaning: str


#: The settings an admin may change, in the order pages and the API show them. ``connectivity``
#: is stated, not tunable (6: the raters' viewer and the MSSEG evaluation use it).
SETTINGS = (
    Setting("majority", "raters", "raters needed for a lesion and for each of its voxels; empty = a majority of the assigned raters (2 of 3)"),
    Setting("min_lesion_diameter_mm", "mm", "a lesion smaller than a sphere of this diameter is listed, not counted"),
    Setting("cortical_fraction_cortical", "share", "share of the lesion in cortex (GM / (GM + WM)) from which it is cortical"),
    Setting("cortical_fraction_wm", "share", "share of the lesion in cortex up to which it is white matter (mixed in between)"),
    Setting("reference_max_distance_vox", "voxels", "reference ROIs lie within this in-plane distance of the lesion, on its central slice"),
    Setting("reference_gap_vox", "voxels", "gap left between a reference ROI and any lesion or rater's mark"),
    Setting("reference_min_voxels", "voxels", "a reference ROI with fewer voxels is flagged 'small'"),
    Setting("agreement_alpha", "share", "MSSEG detection: a lesion is detected when more than this share of it is covered"),
    Setting("agreement_beta", "share", "MSSEG: a covering lesion with more than this share outside every reference lesion disqualifies ..."),
    Setting("agreement_gamma", "share", "... when it is among the largest overlaps covering this share of the covered voxels"),
    Setting("agreement_min_volume_mm3", "mm³", "MSSEG: lesions of at most this volume are left out of detection scores"),
)
NAMES = tuple(s.name for s in SETTINGS)


def current_settings(study: Study) -> ConsensusSettings | None:
    """The study's settings version in effect (None: the defaults)."""
    return study.consensus_settings.order_by("-created_at", "-pk").first()


def study_params(study: Study) -> ConsensusParams:
    """The parameters a consensus of this study runs with: the defaults, the study's minimum
    lesion diameter and its newest settings version."""
    values: dict[str, Any] = {}
    latest = current_settings(study)
    if latest is not None:
        values.update({k: v for k, v in latest.values.items() if k in NAMES})
    values["min_lesion_diameter_mm"] = float(study.min_lesion_diameter_mm)
    return ConsensusParams.from_dict(values)


def settings_rows(study: Study) -> list[dict[str, Any]]:
    """Each setting with its value in effect and its default, for pages and the API."""
    now = study_params(study).as_dict()
    default = ConsensusParams().as_dict()
    return [
        {"name": s.name, "value": now[s.name], "default": default[s.name], "unit": s.unit, "meaning": s.meaning}
        for s in SETTINGS
    ]


def settings_history(study: Study) -> QuerySet[ConsensusSettings]:
    """Every version of the study's settings, newest first, with who changed it."""
    return study.consensus_settings.select_related("by").order_by("-created_at", "-pk")


def consensus_settings_update(*, by: Actor, study: Study, values: Mapping[str, Any], reason: str) -> ConsensusSettings:
    """Change some of a study's consensus settings (the study's admins), then queue the consensus
    again in every session that has one.

    Raises
    ------
    NotFound / Forbidden
        The study is not visible / the caller is not one of its admins.
    ValidationFailed
        An unknown setting, a value the rules refuse (named), no change, no reason.
    """
    selectors.study_for(by, study.pk)  # raters and outsiders: no such study
    require_manage(by, study, "change the consensus settings")
    text = reason_text(reason, missing="give a reason for changing the consensus settings")
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise ValidationFailed(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(NAMES)}", field=unknown[0])
    before = study_params(study).as_dict()
    merged = {**{k: before[k] for k in NAMES}, **dict(values)}
    try:
        params = ConsensusParams.from_dict(merged)
    except LesionInputError as exc:
        raise ValidationFailed(str(exc)) from exc
    after = params.as_dict()
    if all(after[k] == before[k] for k in NAMES):
        raise ValidationFailed("these are the settings in effect already: nothing to change")
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if after["min_lesion_diameter_mm"] != float(locked.min_lesion_diameter_mm):
            locked.min_lesion_diameter_mm = after["min_lesion_diameter_mm"]
            locked.save(update_fields=["min_lesion_diameter_mm"])
            study.min_lesion_diameter_mm = locked.min_lesion_diameter_mm
        version = ConsensusSettings.objects.create(
            study=locked, values={k: after[k] for k in NAMES}, reason=text, by=user_or_none(by)
        )
        _queue_again(locked)
    return version


def _queue_again(study: Study) -> None:
    from qsmreview.consensus.services import consensus_after_input_change
    from qsmreview.studies.models import Session

    sessions = ConsensusRun.objects.filter(session__subject__study=study, current=True).values_list("session", flat=True)
    for session in Session.objects.filter(pk__in=list(sessions)).select_related("subject__study"):
        consensus_after_input_change(session=session, what="the study's consensus settings")
