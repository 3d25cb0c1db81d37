"""Errors the edge turns into ``{"error": {"code", "message", "field"}}`` answers.

Hierarchy::

    ApiError                 base; carries status, code, message, field
    ├── BadRequest           400 malformed_json, invalid_field, body_too_large(413)...
    ├── Unauthorized         401 unauthorized
    ├── Forbidden            403 forbidden
    ├── NotFound             404 not_found
    └── Conflict             409 conflict

Codes are stable snake_case strings; clients branch on them, not on messages.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 status: int | None = None, details: list[dict[str, str]] | None = None
                 ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details  # every bad row of a bulk request: {field, code, message}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict[str, dict[str, object]]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ApiError):
    status = 400
    code = "invalid_field"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"
