"""What a user may read of a series' provenance: the blinding rule applied to its inputs.

A derived series records its inputs (``provenance["inputs"]``: id, kind, label, version, sha256).
A series a rater may see (say a coregistered FLAIR) can be derived from one they may not (a QSM,
a lesion mask): that input's id, version and checksum would tell them what the blinding hides.
Every serializer or page that shows provenance renders :func:`provenance_visible_to`; the rule
itself stays in :func:`qsmreview.studies.selectors.series_visible_to`.
"""

from __future__ import annotations

import copy
from typing import Any

from qsmreview.api.ids import id_problem
from qsmreview.studies.models import Series
from qsmreview.studies.selectors import AnyUser, series_visible_to

#: What replaces an input the user may not see: no id, kind, version or checksum.
HIDDEN_INPUT: dict[str, Any] = {"hidden": True}


def _input_id(item: Any) -> int | None:
    if not isinstance(item, dict):
        return None
    number, _ = id_problem(item.get("series"))
    return number


def provenance_visible_to(user: AnyUser | None, series: Series) -> dict[str, Any]:
    """``series.provenance`` with every input the user may not see replaced by :data:`HIDDEN_INPUT`.

    An input that cannot be checked (no series id, a deleted series) counts as not visible. The
    stored provenance is not modified.
    """
    provenance = series.provenance if isinstance(series.provenance, dict) else {}
    inputs = provenance.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return provenance
    ids = {i for i in map(_input_id, inputs) if i is not None}
    visible: set[int] = set()
    if user is not None and ids:
        visible = set(series_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))
    shown = copy.deepcopy(provenance)
    shown["inputs"] = [
        item if _input_id(item) in visible else dict(HIDDEN_INPUT) for item in shown["inputs"]
    ]
    return shown
