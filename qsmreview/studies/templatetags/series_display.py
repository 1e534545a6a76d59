"""Template filters that say which version of a series a row shows.

After coregistration a session holds two current FLAIRs (or T1s): the upload on its own grid and
the job's output resampled onto the T2* grid. Both are "v1"; :func:`version_label` tells them
apart: ``v1 · own grid (native)`` and ``v1 · on T2* grid (coregistered)``. The processing API
sends the same words (``version_label``) for the live processing page.
"""

from __future__ import annotations

from django import template

from qsmreview.studies.models import T2STAR_GRID_KINDS, Series, Space

register = template.Library()


def space_text(series: Series) -> str:
    """Where the series lies, in words; empty for kinds that always lie on the T2* grid."""
    if series.kind in T2STAR_GRID_KINDS:
        return ""
    if series.space == Space.NATIVE:
        return "own grid (native)"
    return "on T2* grid (coregistered)" if series.derived_by_id else "on T2* grid"


@register.filter
def version_label(series: Series) -> str:
    """``v2``, or ``v1 · own grid (native)`` / ``v1 · on T2* grid (coregistered)``."""
    where = space_text(series)
    return f"v{series.version} · {where}" if where else f"v{series.version}"


@register.filter
def space_label(series: Series) -> str:
    """The space in words for every kind (``T2* grid`` for the kinds that must lie on it)."""
    return space_text(series) or "on T2* grid"
