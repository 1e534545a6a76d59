"""The filters of the study's statistics: which lesions go into the lesion table.

``source``
    ``all`` (default): the consensus lesions of every session plus every imported table;
    ``consensus``: the consensus lesions only; ``imported``: the imported tables only.
``excluded``
    ``exclude`` (default): lesions excluded by QC are left out; ``include``: they count too.

One rater's own lesions are not a source yet: a rater's mask is not measured on its own (only the
consensus is), so there is no per-rater lesion table to analyse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from qsmreview.errors import ValidationFailed

SOURCES = ("all", "consensus", "imported")
EXCLUDED = ("exclude", "include")


@dataclass(frozen=True)
class Filters:
    source: str = "all"
    excluded: str = "exclude"

    @property
    def key(self) -> str:
        return f"source={self.source};excluded={self.excluded}"

    @property
    def include_excluded(self) -> bool:
        return self.excluded == "include"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def query(self) -> str:
        return f"source={self.source}&excluded={self.excluded}"


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
    return Filters(**values)
