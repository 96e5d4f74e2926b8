"""The project's exceptions.

Library code raises these; only the edges (CLI, HTTP API, UI) turn them into exit
codes, HTTP statuses or messages. Every message says what was wrong *and* how to fix it.

>>> str(InputError("k must be at least 1, got 0", hint="pass -k 1 or more"))
'k must be at least 1, got 0 (pass -k 1 or more)'
"""

from __future__ import annotations


class QAError(Exception):
    """Base class. ``code`` is a stable machine-readable name used by the HTTP API."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class InputError(QAError):
    """The caller passed something invalid: empty question, k < 1, bad filter…"""

    code = "invalid_input"
    http_status = 400


class NotFoundError(QAError):
    """A folder, document or index that the caller named does not exist."""

    code = "not_found"
    http_status = 404


class NoIndexError(NotFoundError):
    """No index has been built at the configured location yet."""

    code = "no_index"
    http_status = 503


class IndexMismatchError(QAError):
    """The index on disk was built with other settings (embedder, format version)."""

    code = "index_mismatch"
    http_status = 409


class ConfigError(QAError):
    """A setting names something unknown, e.g. an embedder or vector-store backend."""

    code = "bad_config"
    http_status = 400


class StoreUnavailableError(QAError):
    """The index store (a Milvus server or file) cannot be reached or refused an operation."""

    code = "store_unavailable"
    http_status = 503


class EmptyCorpusError(InputError):
    """A folder held no readable document."""

    code = "empty_corpus"


class IngestError(QAError):
    """One file could not be read; ingestion skips it with this reason."""

    code = "unreadable_file"
    http_status = 415


class PermissionDenied(QAError):
    """A write was attempted without the API key or with writes disabled."""

    code = "forbidden"
    http_status = 403


class Unauthorized(QAError):
    """A write came without the API key, or with a wrong one."""

    code = "unauthorized"
    http_status = 401


class Conflict(QAError):
    """The upload would overwrite an indexed document without ``replace=true``."""

    code = "conflict"
    http_status = 409


class UnpackLimitError(IngestError):
    """A packed file (DOCX, PDF) would unpack past one of the caps of
    :mod:`qa.uploads`: it is refused before it is parsed (an upload: 400; a file in a
    corpus folder: skipped with this reason)."""

    code = "unpack_limit"
    http_status = 400


class LLMError(QAError):
    """The LLM that writes generated answers failed: unreachable, too slow, rate-limited,
    or its reply was not a chat completion. Never shown to a user as an error: the
    answer falls back to the extractive one (:mod:`qa.generate`)."""

    code = "llm_unavailable"
    http_status = 502
