"""A study's processing protocol: the defaults every QSM job starts from.

``Study.protocol`` may hold ``{"qsm": {...}}`` to override the defaults below for a study; a job
may override them again per submission. Unknown keys and out-of-range values are refused with a
message, so a typo never silently runs the default.
"""

from __future__ import annotations

from typing import Any

from qsmreview.errors import ValidationFailed

#: MEDI as in the toolbox, with a 2.5 mm erosion of the brain mask before inversion.
QSM_DEFAULTS: dict[str, Any] = {
    "solver": "admm",
    "background": "pdf",
    "erosion_mm": 2.5,
    "lam": 1000.0,
    "edge_percentage": 0.9,
    "csf_zero_reference": False,
    "smv": False,
}

_CHOICES = {"solver": ("admm", "toolbox"), "background": ("pdf", "vsharp")}
_RANGES = {"erosion_mm": (0.0, 20.0), "lam": (1e-3, 1e7), "edge_percentage": (0.0, 1.0)}
_FLAGS = ("csf_zero_reference", "smv")


def _check(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(QSM_DEFAULTS))
    if unknown:
        raise ValidationFailed(
            f"unknown QSM parameter(s): {', '.join(unknown)}; known: {', '.join(QSM_DEFAULTS)}",
            field="parameters",
        )
    out = dict(params)
    for key, choices in _CHOICES.items():
        if key in out and out[key] not in choices:
            raise ValidationFailed(
                f"{key} must be one of {', '.join(choices)}, got {out[key]!r}", field="parameters"
            )
    for key, (lo, hi) in _RANGES.items():
        if key in out:
            try:
                value = float(out[key])
            except (TypeError, ValueError):
                raise ValidationFailed(f"{key} must be a number, got {out[key]!r}", field="parameters")
            if not lo <= value <= hi:
                raise ValidationFailed(f"{key} must be within [{lo:g}, {hi:g}], got {value:g}", field="parameters")
            out[key] = value
    for key in _FLAGS:
        if key in out and not isinstance(out[key], bool):
            raise ValidationFailed(f"{key} must be true or false, got {out[key]!r}", field="parameters")
    return out


def qsm_parameters(study_protocol: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the study's protocol, then per-job overrides; every layer validated."""
    params = dict(QSM_DEFAULTS)
    params.update(_check(dict((study_protocol or {}).get("qsm", {}))))
    params.update(_check(dict(overrides or {})))
    return params
