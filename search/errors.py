"""Errors a caller can show to a user: each carries a stable code, a message and an HTTP status."""

from __future__ import annotations


class VnsearchError(Exception):
    """Base class: ``code`` is machine-readable, ``message`` is for people."""

    status = 400
    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(VnsearchError):
    status = 400
    code = "bad_parameter"


class NotFound(VnsearchError):
    status = 404
    code = "not_found"


class IndexMissing(VnsearchError):
    status = 503
    code = "no_index"


class IndexBusy(VnsearchError):
    """Another reindex holds the writer lock."""

    status = 409
    code = "index_busy"


class SourceMissing(VnsearchError):
    status = 400
    code = "source_missing"


class SourceChanged(VnsearchError):
    """A document a run was writing was no longer in its source when read again."""

    status = 409
    code = "source_changed"


class SourceUnreadable(VnsearchError):
    """A source could not be read whole, and the run would have had to drop its documents."""

    status = 400
    code = "source_unreadable"
