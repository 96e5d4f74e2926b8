"""Checks on an uploaded file before anything is written: can it be indexed at all?"""

from __future__ import annotations

from pathlib import Path

from qa.errors import IngestError, InputError


def check_readable(name: str, content: bytes) -> None:
    """Reject an upload that ingestion could not read, parsing it from memory (no
    temporary copy that a kill could leave behind)."""
    from qa.ingest import _text_from_bytes

    try:
        _text_from_bytes(content, Path(name).suffix)
    except IngestError as exc:
        raise InputError(f"{name} cannot be indexed: {exc.message}",
                         hint="upload a text, HTML, PDF or DOCX file with text in it") from exc
