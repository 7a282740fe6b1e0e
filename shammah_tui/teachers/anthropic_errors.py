"""The Anthropic API's errors as `TeacherError` kinds: the one table every Claude client reads.

Two clients reach Claude: the teacher (the anthropic SDK) and `serve`'s relay (raw HTTP). Both
see an HTTP status, and an error body whose `type` names the error; a stream that fails after it
started arrives with status 200 and only the type. Either way the kind comes from here, so the
two never disagree about what a 529 or an `overloaded_error` is.
"""

from __future__ import annotations

from shammah_tui.core.teaching import ErrorKind

#: An error status decides the kind by itself.
STATUS_KINDS: dict[int, ErrorKind] = {
    400: "bad_request",
    401: "auth",
    403: "permission",
    404: "bad_request",
    408: "timeout",
    413: "bad_request",
    422: "bad_request",
    429: "rate_limit",
    504: "timeout",
    529: "overloaded",
}

#: An error body's `type`, for a status that does not decide (mid-stream errors come with 200).
TYPE_KINDS: dict[str, ErrorKind] = {
    "authentication_error": "auth",
    "permission_error": "permission",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "api_error": "server",
    "timeout_error": "timeout",
    "invalid_request_error": "bad_request",
    "request_too_large": "bad_request",
    "not_found_error": "bad_request",
}


def error_kind(status: int | None, error_type: str | None) -> ErrorKind:
    """The kind of an API error from its HTTP status (None: a mid-stream error) and body type."""
    if status is not None and status in STATUS_KINDS:
        return STATUS_KINDS[status]
    if status is not None and status >= 500:
        return "server"
    return TYPE_KINDS.get(error_type or "", "unknown")


def api_error_type(kind: ErrorKind) -> str:
    """The API error type a client is shown for a failure of ours (a relay that gave up)."""
    return "timeout_error" if kind == "timeout" else "api_error"
