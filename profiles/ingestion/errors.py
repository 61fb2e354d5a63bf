"""Errors of ingestion: each carries the HTTP status and the `code` SDKs read."""

from __future__ import annotations

# --- Errors -----------------------------------------------------------------------------------


class IngestError(Exception):
    """A request ingestion refuses; `code`/`message` are what SDKs read from the error body."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class MalformedBodyError(IngestError):
    code = "malformed_json"


class InvalidMessageError(IngestError):
    code = "invalid_message"


class PayloadTooLargeError(IngestError):
    status = 413
    code = "request_too_large"


class InvalidWriteKeyError(IngestError):
    status = 401
    code = "invalid_write_key"


class StorageUnavailableError(IngestError):
    """The database cannot store the request now (an outage): SDKs retry a 503 later."""

    status = 503
    code = "database_unavailable"
    retry_after_seconds = 5


class TrackingPlanInvalidError(ValueError):
    """A tracking plan that cannot be saved; the message says which event schema and why."""
