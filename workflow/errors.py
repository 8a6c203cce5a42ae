"""Refusals the engine raises; the web layer turns each into its HTTP status and a JSON error."""


class WorkflowError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(WorkflowError):
    """The request is malformed (a field missing or of the wrong type)."""
    status, code = 400, "bad_request"


class Forbidden(WorkflowError):
    status, code = 403, "forbidden"


class NotFound(WorkflowError):
    status, code = 404, "not_found"


class Conflict(WorkflowError):
    """The case is no longer in the state the action needs, or the caller's version is stale."""
    status, code = 409, "conflict"


class Refused(WorkflowError):
    """A rule refuses it; the message says which."""
    status, code = 422, "refused"
