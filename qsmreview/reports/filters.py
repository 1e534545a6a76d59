"""The filters of the study's statistics: which lesions go into the lesion table.

``source``
    ``all`` (default): the consensus lesions of every session plus every imported table;
    ``consensus``: the consensus lesions only; ``imported``: the imported tables only;
    ``rater:<username>``: that rater's own lesions, measured by each session's consensus run as
    its consensus lesions are (a single reader's table, to compare with the consensus).
``excluded``
    ``exclude`` (default): lesions excluded by QC are left out; ``include``: they count too.
    (QC decisions concern consensus lesions: a rater's own lesions are never excluded.)
``solver``
    ``""`` (default): each session's current consensus run; a QSM solver's name (``admm``,
    ``toolbox``, as recorded in the QSM series' provenance): each session's newest succeeded run
    measured on a QSM made by that solver (sessions without one are left out). Imported tables
    have no solver and are left out when one is asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from qsmreview.errors import ValidationFailed

SOURCES = ("all", "consensus", "imported")
#: ``source`` prefix of one rater's own lesions: ``rater:<username>``.
RATER_PREFIX = "rater:"
SOURCE_HELP = (
    "all (default: consensus lesions and imported tables), consensus, imported, or rater:<username> "
    "(that rater's own lesions, measured by each session's consensus run)"
)
EXCLUDED = ("exclude", "include")
_SOLVER = re.compile(r"[a-z0-9_-]{1,32}")
#: A Django username (letters, digits and @ . + - _, at most 150).
_USERNAME = re.compile(r"[\w.@+-]{1,150}")


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
    def rater(self) -> str:
        """The rater whose own lesions are the source ("" for the other sources)."""
        return self.source[len(RATER_PREFIX):] if self.source.startswith(RATER_PREFIX) else ""

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
        if name == "source" and isinstance(value, str) and value.startswith(RATER_PREFIX):
            if not _USERNAME.fullmatch(value[len(RATER_PREFIX):]):
                raise ValidationFailed("source rater:<username> needs a rater's username", field=name)
        elif not isinstance(value, str) or value not in allowed:
            extra = ", rater:<username>" if name == "source" else ""
            raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}{extra}", field=name)
        values[name] = value
    solver = data.get("solver")
    if solver not in (None, ""):
        if not isinstance(solver, str) or not _SOLVER.fullmatch(solver):
            raise ValidationFailed("solver must be a QSM solver's name (lower-case letters, digits, - and _)",
                                   field="solver")
        values["solver"] = solver
    return Filters(**values)
