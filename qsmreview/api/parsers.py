"""The API's JSON parser: refuses what no database column of ours can store.

Python's :mod:`json` reads ``1e400`` as ``inf`` and keeps ``\\u0000`` in strings. PostgreSQL
refuses both (``jsonb`` has no infinity and no NUL; ``text`` has no NUL), so a body carrying them
into a ``JSONField`` (a subject's ``extra``, a job's ``parameters``, ...) used to end in a
database error (500) there, while SQLite stored it. Refusing them here, for every JSON body,
answers 400 on every database before any field or service sees the value.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework.exceptions import ParseError

from qsmreview.errors import ValidationFailed
from rest_framework.parsers import JSONParser


def _problem(value: Any) -> tuple[str, str | None] | None:
    """What no database can store in ``value`` (a parsed JSON document), or None.

    Returns the problem and the top-level field it was found in (None when the document itself,
    or a top-level key, is the culprit).
    """
    stack: list[tuple[Any, str | None]] = [(value, None)]
    while stack:
        item, field = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (1e400 and the like overflow to infinity)", field
        if isinstance(item, str) and "\x00" in item:
            return "text may not contain the NUL character (\\u0000)", field
        if isinstance(item, dict):
            for key, child in item.items():
                top = field if field is not None or item is not value else str(key)
                stack.append((key, field))
                stack.append((child, top))
        elif isinstance(item, list):
            stack.extend((child, field) for child in item)
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing non-finite numbers and NUL characters anywhere in the body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        found = _problem(data)
        if found:
            problem, field = found
            if field is None:
                raise ParseError(f"JSON parse error - {problem}")
            raise ValidationFailed(f"{field}: {problem}", field=field)
        return data
