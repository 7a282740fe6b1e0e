"""The one table of Anthropic API errors, and both Claude clients reading it alike."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from shammah_tui.teachers.anthropic_errors import STATUS_KINDS, TYPE_KINDS, api_error_type, error_kind
from shammah_tui.teachers.claude import map_error

CASES = [
    # (status, body type, kind)
    (401, "authentication_error", "auth"),
    (403, "permission_error", "permission"),
    (429, "rate_limit_error", "rate_limit"),
    (529, "overloaded_error", "overloaded"),
    (500, "api_error", "server"),
    (502, None, "server"),
    (503, "api_error", "server"),
    (504, None, "timeout"),
    (408, None, "timeout"),
    (400, "invalid_request_error", "bad_request"),
    (404, "not_found_error", "bad_request"),
    (413, "request_too_large", "bad_request"),
    (418, "teapot_error", "unknown"),
    (409, "rate_limit_error", "rate_limit"),  # a status the table leaves open: the body's type decides
    (None, "overloaded_error", "overloaded"),  # mid-stream: only the type
    (None, "api_error", "server"),
    (None, "invalid_request_error", "bad_request"),
    (None, "something_new", "unknown"),
    (None, None, "unknown"),
]


@pytest.mark.parametrize(("status", "error_type", "kind"), CASES)
def test_status_then_type_decide_the_kind(status, error_type, kind) -> None:
    assert error_kind(status, error_type) == kind


def test_a_deciding_status_wins_over_the_body_type() -> None:
    for status, kind in STATUS_KINDS.items():
        assert error_kind(status, "overloaded_error") == kind
    assert error_kind(500, "rate_limit_error") == "server"


def test_every_kind_in_the_tables_is_a_teacher_error_kind() -> None:
    from typing import get_args

    from shammah_tui.core.teaching import ErrorKind

    assert set(STATUS_KINDS.values()) | set(TYPE_KINDS.values()) <= set(get_args(ErrorKind))


def test_the_error_type_a_client_is_shown() -> None:
    assert api_error_type("timeout") == "timeout_error"
    assert {api_error_type(k) for k in ("server", "stream_cut", "connection", "unknown")} == {"api_error"}


@pytest.mark.parametrize(("status", "error_type", "kind"), [c for c in CASES if c[0] is not None])
def test_the_teacher_maps_sdk_errors_through_the_table(status, error_type, kind) -> None:
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://claude.test/v1/messages"))
    body = {"type": "error", "error": {"type": error_type, "message": "why"}} if error_type else None
    exc = anthropic.APIStatusError("why", response=response, body=body)
    err = map_error(exc, base_url="http://claude.test", timeout_s=5, model="m")
    assert err.kind == kind
    assert "\n" not in err.message and f"({status})" in err.message
