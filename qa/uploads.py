"""Uploaded files: the name they are stored under, and the checks before they are stored.

The CLI indexes folders as they are; uploads (HTTP API, chat UI) arrive with a name
chosen by someone else and bytes nobody has looked at. :func:`safe_filename` turns
the name into a plain file name that every file system here accepts, and
:func:`check_readable` makes sure ingestion can read the bytes, in memory, before
they reach the corpus folder.

Names are limited in UTF-8 *bytes* (Linux's NAME_MAX is 255 bytes, and a Chinese
character takes three), with room left for the hidden temporary names derived from
them (:func:`derived_name`, e.g. ``.{name}.upload``):

>>> name = safe_filename("宜" * 86 + ".txt")
>>> len(name.encode("utf-8")) <= MAX_NAME_BYTES, name.endswith(".txt")
(True, True)
>>> len(derived_name(name, "upload").encode("utf-8")) <= NAME_MAX
True
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata

from qa.errors import IngestError, InputError, UnpackLimitError

# Linux file systems (ext4, xfs, btrfs, tmpfs) allow 255 bytes per file name.
NAME_MAX = 255
# A stored name's budget; the other 55 bytes are for what is derived from it: a
# leading dot and a tag of up to 53 bytes (".upload" is 7). 200 bytes is 66 Chinese
# characters or 200 ASCII ones, more than any real title needs.
MAX_NAME_BYTES = 200
# Hex digits of SHA-256 added to a shortened name, so that two long names that share
# their first 200 bytes stay two files (2^40 values: no collision in a corpus).
HASH_CHARS = 10
# A "suffix" longer than this is part of the name, not a file type (".docx" is 5).
MAX_SUFFIX_BYTES = 16

_UNSAFE = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def safe_filename(name: str) -> str:
    """A plain file name from an uploaded one: no folders, no leading dots, at most
    :data:`MAX_NAME_BYTES` bytes of UTF-8, the file type kept.

    A name over the budget keeps its extension and as much of its start as fits,
    plus a short hash of the whole name so that two long names do not collide.

    >>> safe_filename("../../etc/passwd"), safe_filename("C:\\\\docs\\\\宜昌 报告.txt")
    ('passwd', '宜昌_报告.txt')
    >>> long = safe_filename("a" * 300 + ".docx")
    >>> long.endswith(".docx"), len(long), long == safe_filename("a" * 299 + "b.docx")
    (True, 200, False)
    >>> safe_filename("..")
    Traceback (most recent call last):
    ...
    qa.errors.InputError: unusable file name '..' (upload a file with a name such as report.txt)
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", base)).strip("._ ")
    if not base:
        raise InputError(f"unusable file name {name!r}", hint="upload a file with a name such as report.txt")
    if _utf8_len(base) <= MAX_NAME_BYTES:
        return base
    stem, suffix = os.path.splitext(base)
    if _utf8_len(suffix) > MAX_SUFFIX_BYTES:
        stem, suffix = base, ""
    digest = hashlib.sha256(base.encode("utf-8")).hexdigest()[:HASH_CHARS]
    room = MAX_NAME_BYTES - _utf8_len(suffix) - 1 - HASH_CHARS
    # Cut at a character boundary (errors="ignore" drops a split multi-byte character).
    head = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip("._- ")
    return f"{head}-{digest}{suffix}" if head else f"{digest}{suffix}"


def derived_name(name: str, tag: str) -> str:
    """The hidden temporary name ``.{name}.{tag}`` of a stored name; it always fits
    in :data:`NAME_MAX` bytes for a name from :func:`safe_filename` and a tag of up
    to 53 bytes.

    >>> derived_name("宜昌.txt", "upload")
    '.宜昌.txt.upload'
    >>> derived_name("a" * 250, "upload")
    Traceback (most recent call last):
    ...
    qa.errors.InputError: the temporary name of 'aaaaaaaaaaaaaaaaaaaa…' would be 258 bytes, over the 255 a file name may have (upload it under a shorter name)
    """
    derived = f".{name}.{tag}"
    if _utf8_len(derived) > NAME_MAX:
        raise InputError(f"the temporary name of {name[:20] + '…'!r} would be {_utf8_len(derived)} bytes, "
                         f"over the {NAME_MAX} a file name may have", hint="upload it under a shorter name")
    return derived


def check_readable(name: str, content: bytes) -> None:
    """Refuse an upload that ingestion could not read, before it reaches the corpus.

    The bytes are parsed in memory (no temporary file that a killed process could
    leave behind), under the decompression caps of :mod:`qa.unpack`.

    >>> check_readable("ok.txt", "宜昌打造10分钟急救圈。".encode())
    >>> check_readable("empty.txt", b"   ")
    Traceback (most recent call last):
    ...
    qa.errors.InputError: empty.txt cannot be indexed: empty file (upload a text, HTML, PDF or DOCX file with text in it)
    """
    from qa.ingest import text_from_bytes

    try:
        text_from_bytes(content, os.path.splitext(name)[1])
    except UnpackLimitError as exc:
        raise UnpackLimitError(f"{name} cannot be indexed: {exc.message}", hint=exc.hint) from exc
    except IngestError as exc:
        raise InputError(f"{name} cannot be indexed: {exc.message}",
                         hint="upload a text, HTML, PDF or DOCX file with text in it") from exc
