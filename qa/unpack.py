"""Caps on what a packed file may unpack to, checked before and while it is unpacked.

A .docx is a zip archive and a .pdf holds compressed streams: a 2 MB upload can
expand to gigabytes (a "zip bomb"), and the parsers (python-docx, pypdf) would hold
all of it in memory. :mod:`qa.ingest` calls :func:`check_zip` before python-docx
opens a file and :func:`pdf_guard` around pypdf, so such a file is refused with an
:class:`~qa.errors.UnpackLimitError` naming the cap, while memory stays flat.

>>> LIMITS.max_unpacked_bytes // (1 << 20), LIMITS.max_entries, LIMITS.max_ratio, LIMITS.max_pages
(64, 2000, 100, 2000)
"""

from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from qa.errors import UnpackLimitError

# Reading the archive back, chunk by chunk, to count what it really unpacks to.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class UnpackLimits:
    """The caps. Chosen far above real government documents and far below what could
    hurt a server holding the index and model (about 1.3 GB resident): a 300-page
    report as .docx unpacks to a few MB of XML plus its images, deflated XML shrinks
    5-20x, and a report of 2,000 pages is already a book; a file over any cap is
    refused, not truncated."""

    # Total bytes all entries (DOCX) or all page content streams (PDF) unpack to.
    max_unpacked_bytes: int = 64 << 20
    # Entries of a DOCX archive (a real one has 10-100: XML parts, images, fonts).
    max_entries: int = 2000
    # Unpacked/packed size of one archive entry; zeros deflate about 1000x, text XML 5-20x.
    max_ratio: int = 100
    # Entries smaller than this are not ratio-checked: tiny parts compress oddly and cannot hurt.
    ratio_floor_bytes: int = 1 << 20
    # Pages of a PDF.
    max_pages: int = 2000


LIMITS = UnpackLimits()


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB"


def check_zip(data: bytes, limits: UnpackLimits = LIMITS) -> None:
    """Refuse an archive over a cap: first by its declared sizes (no unpacking at
    all), then by unpacking every entry in 1 MB chunks that are counted and dropped,
    so an archive whose headers lie is caught at the cap, not after it.

    A file that is not a zip archive at all is left to the parser to report.

    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    ...     z.writestr("word/document.xml", b"<w:document/>")
    ...     z.writestr("zeros.bin", bytes(4 << 20))
    >>> check_zip(buf.getvalue(), UnpackLimits(max_unpacked_bytes=8 << 20))
    Traceback (most recent call last):
    ...
    qa.errors.UnpackLimitError: zeros.bin unpacks to 4 MB, over 100 times its packed size (the compression-ratio cap; a zip bomb?) (re-save the document without embedded archives or oversized media, or split it)
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not an archive: the parser says what is wrong with it
    hint = "re-save the document without embedded archives or oversized media, or split it"
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_entries:
            raise UnpackLimitError(f"the archive has {len(entries)} entries, over the cap of {limits.max_entries}",
                                   hint=hint)
        declared = 0
        for info in entries:
            declared += info.file_size
            if declared > limits.max_unpacked_bytes:
                raise UnpackLimitError(f"the archive unpacks to more than {_mb(limits.max_unpacked_bytes)} "
                                       "(the cap on unpacked bytes)", hint=hint)
            _check_ratio(info.filename, info.file_size, info.compress_size, limits, hint)
        total = 0
        for info in entries:
            if info.is_dir():
                continue
            size = 0
            try:
                with archive.open(info) as member:
                    while chunk := member.read(_CHUNK):
                        size += len(chunk)
                        total += len(chunk)
                        if total > limits.max_unpacked_bytes:
                            raise UnpackLimitError(f"the archive unpacks to more than "
                                                   f"{_mb(limits.max_unpacked_bytes)} (the cap on unpacked bytes)",
                                                   hint=hint)
                        _check_ratio(info.filename, size, info.compress_size, limits, hint)
            except UnpackLimitError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
                return  # a corrupt or encrypted entry: the parser reports it as such


def _check_ratio(name: str, size: int, packed: int, limits: UnpackLimits, hint: str) -> None:
    if size >= limits.ratio_floor_bytes and size > limits.max_ratio * max(packed, 1):
        raise UnpackLimitError(f"{name} unpacks to {_mb(size)}, over {limits.max_ratio} times its packed size "
                               "(the compression-ratio cap; a zip bomb?)", hint=hint)


class PdfBudget:
    """Counts the bytes of a PDF's decoded page contents against the cap.

    >>> budget = PdfBudget(UnpackLimits(max_unpacked_bytes=10))
    >>> budget.spend(6); budget.spend(6)
    Traceback (most recent call last):
    ...
    qa.errors.UnpackLimitError: the PDF's pages unpack to more than 0 MB (the cap on unpacked bytes) (split the PDF or save it with fewer embedded objects)
    """

    def __init__(self, limits: UnpackLimits = LIMITS):
        self.limits = limits
        self.used = 0

    def pages(self, count: int) -> None:
        if count > self.limits.max_pages:
            raise UnpackLimitError(f"the PDF has {count} pages, over the cap of {self.limits.max_pages}",
                                   hint="split it into parts")

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limits.max_unpacked_bytes:
            raise UnpackLimitError(f"the PDF's pages unpack to more than {_mb(self.limits.max_unpacked_bytes)} "
                                   "(the cap on unpacked bytes)",
                                   hint="split the PDF or save it with fewer embedded objects")


@contextmanager
def pdf_guard(limits: UnpackLimits = LIMITS) -> Iterator[PdfBudget]:
    """pypdf with every decoder's output capped at the unpacked-bytes cap (pypdf's own
    limits, set for this thread only), and a :class:`PdfBudget` for the total."""
    import pypdf
    from pypdf.errors import LimitReachedError

    cap = limits.max_unpacked_bytes
    budget = PdfBudget(limits)
    try:
        with pypdf.apply_configuration(
            maximum_declared_stream_length=cap, array_based_stream_maximum_output_length=cap,
            jbig2_maximum_output_length=cap, lzw_maximum_output_length=cap, run_length_maximum_output_length=cap,
            zlib_maximum_output_length=cap, brotli_maximum_output_length=cap, image_maximum_buffer_size=cap,
            stream_decoding_work_maximum_length=cap, xfa_decoding_work_maximum_length=cap,
            page_tree_maximum_entries=limits.max_pages * 4,
        ):
            yield budget
    except LimitReachedError as exc:
        raise UnpackLimitError(f"the PDF would unpack past a cap: {exc} (the cap on unpacked bytes is "
                               f"{_mb(cap)} and on pages {limits.max_pages})",
                               hint="split the PDF or save it with fewer embedded objects") from exc
