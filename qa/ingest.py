"""Ingestion: files on disk → :class:`qa.types.Document`.

Reading is deliberately lossless: the decoded text is kept exactly as decoded
(``\\r\\n`` included), because every offset in the system points into it. Cleaning
and metadata extraction work on top of it and map back to it.

>>> decode_bytes("宜昌打造急救圈".encode("gb18030"))
'宜昌打造急救圈'
>>> content_hash(b"abc")[:12]
'ba7816bf8f01'
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from qa.clean import clean
from qa.errors import IngestError, InputError, NotFoundError
from qa.fold import to_simplified
from qa.metadata import extract_metadata
from qa.types import Document
from qa.unpack import check_zip, pdf_guard

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestResult",
    "Skipped",
    "content_hash",
    "decode_bytes",
    "iter_corpus_files",
    "load_document",
    "load_folder",
    "read_text",
    "text_from_bytes",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why (one line, shown to the user)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestResult:
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]


def content_hash(data: bytes) -> str:
    """SHA-256 of the raw file bytes: unchanged files are not re-embedded."""
    return hashlib.sha256(data).hexdigest()


# --- decoding --------------------------------------------------------------------
# Legacy Chinese encodings overlap: GB2312 bytes usually also decode as Big5 and
# Big5 bytes always decode as GB18030, just into the wrong characters. Real text is
# dominated by a few thousand frequent characters while mojibake is not, so each
# successful decoding is scored by the share of its non-ASCII characters that are
# frequent Chinese characters (after folding to simplified) or CJK punctuation.
_COMMON_CHARS = 3000
_CJK_PUNCT = set("，。、：；！？“”‘’（）《》〈〉【】「」『』…—·．～　％＋－／")
_CANDIDATES = ("utf-8", "gb18030", "big5")
# UTF-8 that decodes is nearly always right; only a clearly better reading (short
# GBK text can be valid UTF-8 by accident: 一 = D2 BB = "һ") displaces it.
_UTF8_MARGIN = 0.1


@lru_cache(maxsize=1)
def _common_chars() -> frozenset[str]:
    """The most frequent characters of jieba's bundled dictionary (simplified)."""
    import jieba

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    freq: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(" ", 2)
            if len(parts) >= 2 and parts[1].isdigit():
                for ch in parts[0]:
                    freq[ch] += int(parts[1])
    return frozenset(ch for ch, _ in freq.most_common(_COMMON_CHARS))


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def _plausibility(text: str) -> float:
    """Share of non-ASCII characters that real Chinese text is made of (1.0 if none).

    >>> _plausibility("宜昌,急救圈"), _plausibility("һ")
    (1.0, 0.0)
    """
    others = [ch for ch in text if ord(ch) > 127 and not ch.isspace()]
    if not others:
        return 1.0
    good = sum(1 for ch in others if ch in _CJK_PUNCT or "\uff01" <= ch <= "\uff5e")
    # One OpenCC call for all ideographs: t2s maps one character to one character.
    ideographs = to_simplified("".join(ch for ch in others if _is_cjk(ch)))
    common = _common_chars()
    good += sum(1 for ch in ideographs if ch in common)
    return good / len(others)


def _surely_utf8(text: str) -> bool:
    """Plenty of Chinese and nothing else non-ASCII: no need to weigh alternatives.

    Legacy bytes that happen to be valid UTF-8 decode to scattered Latin/Cyrillic
    letters, never to dozens of ideographs in a row.
    """
    others = [ch for ch in text if ord(ch) > 127 and not ch.isspace()]
    if not others:
        return True
    cjk = sum(1 for ch in others if _is_cjk(ch) or ch in _CJK_PUNCT or "\uff01" <= ch <= "\uff5e")
    return len(others) >= 20 and cjk >= 0.9 * len(others)


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _check_text(text: str) -> str:
    # Control characters other than tab/newline/form feed/escape mean binary data
    # that happened to decode (UTF-16/Big5 are permissive enough for that).
    if text and len(_CONTROL.findall(text)) > max(2, len(text) // 100):
        raise IngestError("binary data, not text", hint="convert the file to UTF-8 text, PDF or DOCX")
    return text


def decode_bytes(data: bytes) -> str:
    """Decode a text file: UTF-8 (± BOM), UTF-16/32 with BOM, GB18030/GBK, Big5.

    >>> decode_bytes("\\ufeff鄂州".encode("utf-8")), decode_bytes("鄂州".encode("utf-16"))
    ('鄂州', '鄂州')
    >>> decode_bytes("吉首市、瀘溪縣和鳳凰縣".encode("big5"))
    '吉首市、瀘溪縣和鳳凰縣'
    >>> decode_bytes(b"\\x00\\x01PK")
    Traceback (most recent call last):
    qa.errors.IngestError: binary data (NUL bytes), not text (convert the file to UTF-8 text, PDF or DOCX)
    """
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: FF FE 00 00 starts with FF FE
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(encoding))
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"starts with a {encoding} byte-order mark but is not valid {encoding} "
                    f"(bad byte at {exc.start})",
                    hint="re-save the file as UTF-8",
                ) from exc
    if b"\x00" in data:
        raise IngestError("binary data (NUL bytes), not text", hint="convert the file to UTF-8 text, PDF or DOCX")
    decoded: list[tuple[float, int, str]] = []
    for rank, encoding in enumerate(_CANDIDATES):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8" and _surely_utf8(text):
            return _check_text(text)
        score = _plausibility(text) + (_UTF8_MARGIN if encoding == "utf-8" else 0.0)
        decoded.append((score, -rank, text))
    if not decoded:
        raise IngestError(
            "undecodable: not UTF-8, UTF-16, GB18030/GBK or Big5 text",
            hint="re-save the file as UTF-8",
        )
    return _check_text(max(decoded)[2])


# --- HTML ------------------------------------------------------------------------
_BREAK = "\x00"  # stands for a block boundary until the final layout pass
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body br dd details div dl dt figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody "
    "thead tfoot tr ul".split()
)
_CELL_TAGS = frozenset({"td", "th"})
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "svg"})
_CJK_CLASS = r"[\u2014\u2018-\u201f\u2026\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(_BREAK)
            self.pre += tag == "pre"
        elif tag in _CELL_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK_TAGS:  # <br/>, <hr/>
            self.parts.append(_BREAK)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(_BREAK)
            self.pre = max(0, self.pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.parts.append(data.replace("\n", _BREAK) if self.pre else data)

    def text(self) -> str:
        raw = "".join(self.parts).replace("\r\n", "\n")
        # A source line break between two Chinese characters is not a space.
        raw = re.sub(rf"(?<={_CJK_CLASS})[ \t\r\f\v]*\n[ \t\n\r\f\v]*(?={_CJK_CLASS})", "", raw)
        raw = re.sub(r"[ \t\n\r\f\v]+", " ", raw)
        lines = [line.strip(" ") for line in raw.split(_BREAK)]
        out = "\n".join(lines)
        out = re.sub(r"\n{3,}", "\n\n", out)  # one blank line between blocks at most
        return out.strip("\n")


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: block elements become line breaks.

    >>> html_to_text("<html><head><title>t</title><style>p{}</style></head>"
    ...              "<body><h1>宜昌</h1><p>急救&amp;转运<br>10分钟</p><script>x()</script></body></html>")
    '宜昌\\n\\n急救&转运\\n10分钟'
    """
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.text()


# --- PDF and DOCX ----------------------------------------------------------------
def _pdf_text(data: bytes) -> str:
    import pypdf

    try:
        with pdf_guard() as budget:  # decompression caps: a PDF bomb is refused, not unpacked
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise IngestError("encrypted PDF (needs a password)", hint="save an unencrypted copy")
            budget.pages(len(reader.pages))
            pages = []
            for page in reader.pages:
                contents = page.get_contents()
                budget.spend(len(contents.get_data()) if contents is not None else 0)
                pages.append(page.extract_text() or "")
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on malformed files
        raise IngestError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})",
                          hint="re-export the PDF") from exc
    if not any(page.strip() for page in pages):
        raise IngestError("no extractable text (scanned PDF?)", hint="run OCR on it first")
    return "\n\n".join(pages)


def _docx_text(data: bytes) -> str:
    import docx
    from docx.table import Table

    def table_lines(table: Table) -> list[str]:
        lines = []
        for row in table.rows:
            cells, seen = [], set()
            for cell in row.cells:
                if id(cell._tc) in seen:  # a merged cell repeats in every column it spans
                    continue
                seen.add(id(cell._tc))
                text = "\n".join(p.text for p in cell.paragraphs).strip()
                if text:
                    cells.append(text)
                for inner in cell.tables:
                    lines.extend(table_lines(inner))
            if cells:
                lines.append("\t".join(cells))
        return lines

    check_zip(data)  # decompression caps, before python-docx loads every part into memory
    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for block in document.iter_inner_content():  # paragraphs and tables, in order
            if isinstance(block, Table):
                lines.extend(table_lines(block))
            else:
                lines.append(block.text)
    except Exception as exc:  # noqa: BLE001 - zip, XML and package errors all mean "corrupt"
        raise IngestError(f"corrupt or unreadable DOCX ({type(exc).__name__}: {exc})",
                          hint="re-save it from Word or LibreOffice") from exc
    return "\n".join(lines)


# --- files -----------------------------------------------------------------------
def _text_from_bytes(data: bytes, suffix: str) -> str:
    suffix = suffix.lower()
    if suffix in (".txt", ".md"):
        text = decode_bytes(data)
    elif suffix in (".html", ".htm"):
        text = html_to_text(decode_bytes(data))
    elif suffix == ".pdf":
        text = _pdf_text(data)
    elif suffix == ".docx":
        text = _docx_text(data)
    else:
        raise IngestError(
            f"unsupported file type {suffix or '(no suffix)'!r}",
            hint=f"use one of: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    if not text.strip():
        raise IngestError("empty file", hint="add some text or remove the file")
    return text


def text_from_bytes(data: bytes, suffix: str) -> str:
    """The text of a file's bytes, by suffix, with no file on disk (an upload is
    checked in memory, so nothing can be left behind if the process dies).

    >>> text_from_bytes("宜昌急救圈".encode("gb18030"), ".txt")
    '宜昌急救圈'
    """
    return _text_from_bytes(data, suffix)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}", hint="check the file's permissions") from exc


def read_text(path: Path) -> str:
    """The text of one file, by suffix, exactly as decoded/extracted.

    Raises :class:`~qa.errors.IngestError` with a one-line reason when the file is
    binary, undecodable, corrupt, encrypted, a scanned PDF or empty.
    """
    path = Path(path)
    return _text_from_bytes(_read_bytes(path), path.suffix)


def load_document(path: Path, root: Path, doc_id: str | None = None) -> Document:
    """Read, clean and describe one file; ``doc_id`` is its POSIX path below ``root``
    unless given (a staged upload is read from elsewhere under its final name)."""
    path, root = Path(path), Path(root)
    if doc_id is None:
        try:
            doc_id = path.relative_to(root).as_posix()
        except ValueError as exc:
            raise InputError(f"{path} is not inside {root}", hint="pass a file below the corpus folder") from exc
    data = _read_bytes(path)
    text = _text_from_bytes(data, Path(doc_id).suffix)  # the name's type, not the staged file's
    meta = extract_metadata(text, clean(text), doc_id)
    return Document(
        doc_id=doc_id,
        text=text,
        title=meta.title,
        date=meta.date,
        source=meta.source,
        region=meta.region,
        sections=meta.sections,
        content_hash=content_hash(data),
    )


def _hidden(name: str) -> bool:
    # Dotfiles/dirs (.git, .DS_Store) and Office lock files (~$report.docx).
    return name.startswith((".", "~$"))


def iter_corpus_files(root: Path) -> list[Path]:
    """Supported files below ``root``, recursively, sorted by relative path.

    Hidden files and folders are skipped, and so is anything under them.
    """
    root = Path(root)
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _hidden(d)]  # prune: never descend into .git
        for name in files:
            if not _hidden(name) and os.path.splitext(name)[1].lower() in SUPPORTED_SUFFIXES:
                found.append(Path(folder) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_folder(root: Path, warn: Callable[[str], None] | None = None) -> IngestResult:
    """Every readable document below ``root``; unreadable files are skipped, not fatal.

    ``warn`` is called once per skipped file with ``"skipped <doc_id>: <reason>"``.
    An empty result is returned as is: whether that is an error is the caller's call.
    """
    root = Path(root)
    if not root.exists():
        raise NotFoundError(f"corpus folder {root} does not exist",
                            hint="create it or pass an existing folder of documents")
    if not root.is_dir():
        raise InputError(f"{root} is a file, not a folder", hint="pass the folder that contains it")
    documents: list[Document] = []
    skipped: list[Skipped] = []
    for path in iter_corpus_files(root):
        try:
            documents.append(load_document(path, root))
        except IngestError as exc:
            doc_id = path.relative_to(root).as_posix()
            reason = " ".join(str(exc).split())  # one line, whatever the parser said
            skipped.append(Skipped(doc_id, reason))
            if warn is not None:
                warn(f"skipped {doc_id}: {reason}")
    return IngestResult(documents=tuple(documents), skipped=tuple(skipped))
