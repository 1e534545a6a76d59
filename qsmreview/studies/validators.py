"""Field validators of the studies models: physical ranges and text without control characters.

One module, attached to the model fields, so every door runs the same check: the services
(``full_clean`` on the fields they set), Django admin forms and DRF ``ModelSerializer`` inputs
(both pick up model-field validators), the BIDS import and the management commands. Each raises
Django's :class:`~django.core.exceptions.ValidationError`; the services turn it into
:class:`~qsmreview.errors.ValidationFailed` naming the field.

- :func:`validate_field_strength_t`: B0 in tesla, finite and within 0.1-20 T, the range the
  reconstruction jobs accept (a value outside it would be stored and then fail every job).
- :class:`FiniteRange`: other physical quantities (ages and durations): finite and within a
  plausible range, so ``1e308`` or ``NaN`` never reaches a statistic.
- :func:`validate_single_line`: names, codes and labels (study name, subject code, session label,
  series label, scanner, ...): no control character at all (Unicode category Cc: NUL, tab, line
  feed, escape, DEL, C1 controls) and no line or paragraph separator (U+2028, U+2029).
- :func:`validate_multi_line`: free text (descriptions, notes): line feeds, carriage returns and
  tabs are fine, every other control character is refused.
"""

from __future__ import annotations

import math
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

#: Field strengths accepted (T): the range ``services.series`` and the QSM jobs accept.
FIELD_STRENGTH_RANGE_T = (0.1, 20.0)
#: Control characters free text may hold.
_TEXT_WHITESPACE = frozenset("\n\r\t")
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def validate_field_strength_t(value: float) -> None:
    """Refuse a field strength that is not a finite number of tesla within 0.1-20 T."""
    lo, hi = FIELD_STRENGTH_RANGE_T
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(
            f"must be a field strength in tesla ({lo:g}-{hi:g} T), got {value!r}", code="invalid"
        ) from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ValidationError(
            f"must be a field strength in tesla ({lo:g}-{hi:g} T), got {number:g}",
            code="out_of_range",
        )


@deconstructible
class FiniteRange:
    """Refuse a number that is not finite or lies outside ``[lo, hi]`` (in ``unit``)."""

    def __init__(self, lo: float, hi: float, unit: str):
        self.lo, self.hi, self.unit = lo, hi, unit

    def __call__(self, value: float) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            raise ValidationError(
                f"must be a number of {self.unit} within {self.lo:g}-{self.hi:g}, got {value!r}",
                code="out_of_range",
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FiniteRange) and (self.lo, self.hi, self.unit) == (
            other.lo,
            other.hi,
            other.unit,
        )

    def __hash__(self) -> int:
        return hash((self.lo, self.hi, self.unit))


#: Ages and disease durations (years): a person's lifetime.
validate_years = FiniteRange(0, 130, "years")
#: Lesion ages (months): the same lifetime in months.
validate_months = FiniteRange(0, 130 * 12, "months")


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, repr(char)[1:-1])})"


def _first_forbidden(value: str, allowed: frozenset[str], extra: frozenset[str]) -> tuple[int, str] | None:
    for i, char in enumerate(value):
        if char in allowed:
            continue
        if char in extra or unicodedata.category(char) == "Cc":
            return i, char
    return None


def validate_single_line(value: str) -> None:
    """Refuse any control character (tab and line breaks included) in a name, code or label."""
    found = _first_forbidden(str(value), frozenset(), _LINE_SEPARATORS)
    if found is not None:
        i, char = found
        raise ValidationError(
            f"must be a single line of text without control characters; found {_describe(char)} "
            f"at position {i}",
            code="control_character",
        )


def validate_multi_line(value: str) -> None:
    """Refuse control characters other than line feed, carriage return and tab in free text."""
    found = _first_forbidden(str(value), _TEXT_WHITESPACE, frozenset())
    if found is not None:
        i, char = found
        raise ValidationError(
            f"must not contain control characters other than line breaks and tabs; found "
            f"{_describe(char)} at position {i}",
            code="control_character",
        )


#: A rater's component smaller than a sphere of this diameter is shown as below the minimum.
LESION_DIAMETER_RANGE_MM = (0.0, 50.0)


def validate_lesion_diameter_mm(value: float) -> None:
    """Refuse a minimum lesion diameter that is not a finite number of mm within 0-50 mm."""
    lo, hi = LESION_DIAMETER_RANGE_MM
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"must be a diameter in mm ({lo:g}-{hi:g} mm), got {value!r}", code="invalid") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ValidationError(f"must be a diameter in mm ({lo:g}-{hi:g} mm), got {number:g}", code="out_of_range")
