"""The filters of the study's statistics: which lesions go into the lesion table.

``source``
    ``all`` (default): the consensus lesions of every session plus every imported table;
    ``consensus``: the consensus lesions only; ``imported``: the imported tables only.
``excluded``
    ``exclude`` (default): lesions excluded by QC are left out; ``include``: they count too.
``solver``
    ``""`` (default): each session's current consensus run; a QSM solver's name (``admm``,
    ``toolbox``, as recorded in the QSM series' provenance): each session's newest succeeded run
    measured on a QSM made by that solver (sessions without one are left out). Imported tables
    have no solver and are left out when one is asked.

One rater's own lesions are not a source yet: a rater's mask is not measured on its own (only the
consensus is), so there is no per-rater lesion table to analyse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from qsmreview.errors import ValidationFailed

SOURCES = ("all", "consensus", "imported")
EXCLUDED = ("exclude", "include")
_SOLVER = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True)
class Filters:
    source: str = "all"
    excluded: str = "exclude"
    solver: str = ""

    @property
    def key(self) -> str:
        key = f"source={self.source};excluded={self.excluded}"
        return f"{key};solver={self.solver}" if self.solver else key

    @property
    def include_excluded(self) -> bool:
        return self.excluded == "include"

    def as_dict(self) -> dict[str, str]:
        out = asdict(self)
        if not self.solver:
            del out["solver"]  # the filters of snapshots made before the solver filter existed
        return out

    def query(self) -> str:
        query = f"source={self.source}&excluded={self.excluded}"
        return f"{query}&solver={self.solver}" if self.solver else query


DEFAULT = Filters()


def parse_filters(data: Mapping[str, Any] | None) -> Filters:
    """Filters from a query string or JSON object; unknown values raise ValidationFailed."""
    data = data or {}
    values = {}
    for name, allowed in (("source", SOURCES), ("excluded", EXCLUDED)):
        value = data.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or value not in allowed:
            raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", field=name)
        values[name] = value
    solver = data.get("solver")
    if solver not in (None, ""):
        if not isinstance(solver, str) or not _SOLVER.fullmatch(solver):
            raise ValidationFailed("solver must be a QSM solver's name (lower-case letters, digits, - and _)",
                                   field="solver")
        values["solver"] = solver
    return Filters(**values)
