"""``{{ p|pvalue }}``: a p value as statistics tables print it (4 decimals, or scientific
notation below 0.001, so that 3e-23 does not read as 0.0000)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pvalue(value: Any) -> str:
    if value is None or value == "":
        return "–"
    p = float(value)
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{p:.4f}"
