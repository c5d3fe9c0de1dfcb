"""The domain: functions that take the acting user and data, check rules, change models and flush."""


class DomainError(Exception):
    """A rule was broken; the request boundary turns it into a 4xx page or JSON error."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, fields=None):
        super().__init__(message)
        self.message = message
        if status:
            self.status = status
        if code:
            self.code = code
        self.fields = fields or {}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
