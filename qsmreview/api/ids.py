"""Object ids from the outside world (paths, query strings, forms, JSON bodies), checked in one place.

An id is a positive whole number written in ASCII digits, no larger than the largest value its
database column holds **on PostgreSQL** (``bigint`` for our models' ``BigAutoField``, ``integer``
for Django's users). SQLite stores 64-bit integers everywhere and Django's own range check is
per backend, so bounding by PostgreSQL's ranges here means an id that would give "integer out of
range" there is refused on every database, and a test on SQLite catches it.

- :func:`parse_id` (queries, forms, bodies) raises :class:`~qsmreview.errors.ValidationFailed`
  naming the field: the API answers 400 ``{"detail", "code": "invalid", "field"}``.
- :class:`IdConverter` (``<id:pk>`` in URL patterns) does not match a bad id: 404.
- :class:`IdFilter` (django-filter) and :class:`IdField` (DRF) check the same way, so the
  error names the parameter or field: 400.
"""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Model
from django.urls import register_converter
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qsmreview.errors import ValidationFailed

#: The ranges of PostgreSQL's columns (Django's base ranges are PostgreSQL's).
_RANGES = BaseDatabaseOperations.integer_field_ranges
#: The largest id of our models (``DEFAULT_AUTO_FIELD = BigAutoField``).
MAX_ID = _RANGES["BigAutoField"][1]
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
#: More digits than any id has (2**63 - 1 has 19); not converted (int() of a long string is slow).
_MAX_DIGITS = 19


def max_id(model: type[Model] | None = None) -> int:
    """The largest id ``model``'s primary key holds on PostgreSQL (a ``bigint`` by default)."""
    if model is None:
        return MAX_ID
    internal = model._meta.pk.get_internal_type()
    return _RANGES.get(internal, (None, MAX_ID))[1] or MAX_ID


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def id_problem(value: Any, *, model: type[Model] | None = None) -> tuple[int | None, str]:
    """``(id, "")`` for a good id, ``(None, what is wrong)`` for a bad one."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value) if len(value.lstrip("0")) <= _MAX_DIGITS else max_id(model) + 1
    else:
        return None, f"must be an id (a positive whole number), got {_shown(value)}"
    limit = max_id(model)
    if not 1 <= number <= limit:
        return None, f"must be an id between 1 and {limit}, got {_shown(value)}"
    return number, ""


def parse_id(value: Any, name: str, *, model: type[Model] | None = None) -> int:
    """``value`` as an object id, or :class:`ValidationFailed` naming ``name``.

    Accepts an ``int`` (not a bool or float) or a string of ASCII digits with no sign, spaces,
    exponent or decimal point; ``"1.5"`` is refused, never read as 1.
    """
    number, problem = id_problem(value, model=model)
    if number is None:
        raise ValidationFailed(f"{name} {problem}", field=name)
    return number


class IdConverter:
    """``<id:name>`` in a URL: an id as :func:`parse_id` reads it; anything else does not match."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number, problem = id_problem(value)
        if number is None:
            raise ValueError(problem)  # the pattern does not match: 404
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(IdConverter, "id")


class IdFormField(forms.Field):
    """A form field holding an id (empty is ``None``)."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number, problem = id_problem(value)
        if number is None:
            # django-filter formats the message with its params: a "%" in the value must not count
            raise forms.ValidationError("%(problem)s", code="invalid", params={"problem": problem})
        return number


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID, "format": "int64"})
class IdFilter(django_filters.Filter):
    """A query-string id (``?session=12``); a bad one is 400 naming the parameter."""

    field_class = IdFormField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID, "format": "int64"})
class IdField(serializers.Field):
    """An id in a request body (JSON number or form string), checked like :func:`parse_id`."""

    def __init__(self, *, model: type[Model] | None = None, **kwargs: Any) -> None:
        self.model = model
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        number, problem = id_problem(data, model=self.model)
        if number is None:
            raise serializers.ValidationError(problem, code="invalid")
        return number

    def to_representation(self, value: Any) -> int:
        return int(value)
