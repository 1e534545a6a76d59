"""The reason a user gives for an audited action (a decision, a reopened case, a settings change)."""

from __future__ import annotations

from qsmreview.errors import ValidationFailed

#: Longest reason kept (characters).
MAX_REASON_CHARS = 2000


def reason_text(reason: str | None, *, missing: str | None) -> str:
    """The reason, stripped; ``ValidationFailed`` (field ``reason``) with the message ``missing``
    when it is blank (``missing=None``: a reason is optional), or when it is too long or holds a
    NUL character (which PostgreSQL cannot store)."""
    text = (reason or "").strip()
    if missing is not None and not text:
        raise ValidationFailed(missing, field="reason")
    if len(text) > MAX_REASON_CHARS:
        raise ValidationFailed(f"the reason is longer than {MAX_REASON_CHARS} characters", field="reason")
    if "\x00" in text:
        raise ValidationFailed("the reason may not contain the NUL character", field="reason")
    return text
