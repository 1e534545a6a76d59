"""The domain error every service raises, with the HTTP status the API answers with."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse, said in words a user can act on."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        #: More machine-readable facts for the response body (e.g. a conflict's revision ids).
        self.extra = dict(extra or {})
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status = 400
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooLarge(DomainError):
    status = 413
    code = "too_large"


class Gone(DomainError):
    """The object exists but what it points at (a stored file) is no longer there."""

    status = 410
    code = "gone"
