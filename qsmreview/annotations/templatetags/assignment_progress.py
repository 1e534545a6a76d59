"""Template filters for the progress table: active time as h:mm, a save's age in words."""

from __future__ import annotations

import math
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def hours_minutes(seconds: float | int | None) -> str:
    """``seconds`` as ``h:mm``, rounded down to the minute (``3725`` → ``1:02``); ``0:00`` for
    None, negative or non-finite values."""
    try:
        value = float(seconds or 0)
    except (TypeError, ValueError):
        return "0:00"
    if not math.isfinite(value) or value < 0:
        return "0:00"
    minutes = int(value // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


@register.filter
def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in the largest unit (``3 minutes ago``); ``just now`` under a
    minute (and for a moment in the future: clocks differ); empty for None."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, now, depth=1)} ago"
