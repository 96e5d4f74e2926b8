"""Chunking: Document → Chunk, on Chinese sentence boundaries, with exact offsets.

Chunks are cut from the *cleaned* text (boilerplate dropped, glitches removed) one
section at a time, so a chunk never straddles two speeches of a compilation, and
their offsets are mapped back to the original text for display and citation.

>>> spans = sentence_spans("宜昌打造急救圈。武汉呢？好")
>>> [("宜昌打造急救圈。武汉呢？好")[s:e] for s, e in spans]
['宜昌打造急救圈。', '武汉呢？', '好']
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.clean import CleanText, clean
from qa.fold import fold
from qa.metadata import region_english
from qa.types import Chunk, Document, Sentence

# Sentence-final marks of Chinese and Western text; a closing quote or bracket right
# after the mark belongs to the sentence it closes (……急救圈。” stays together).
_SENTENCE_END = re.compile(r"[。！？!?；;…]+[”’」』）)\"']*|\n+")
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", ",", "、", " ", ""]


@dataclass(frozen=True)
class ChunkSettings:
    size: int = 240
    overlap: int = 40

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"chunk size must be at least 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(
                f"chunk overlap must be in [0, size), got {self.overlap} for size {self.size}"
            )


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences; returns ``(start, end)`` spans, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        spans.append((start, end))
        start = end
    if start < len(text):
        spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


def context_line(doc: Document, section_heading: str) -> str:
    """The provenance line prepended to every chunk of ``doc`` for embedding and BM25.

    The region appears in Chinese and in English so that "Yichang" in an English
    question meets 宜昌 in the passage context.
    """
    parts = [doc.title]
    if doc.region:
        english = region_english(doc.region)
        parts.append(f"{doc.region} {english}" if english else doc.region)
    if section_heading and section_heading != doc.title:
        parts.append(section_heading)
    return " | ".join(parts)


def _splitter(settings: ChunkSettings) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=settings.size,
        chunk_overlap=settings.overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
        length_function=len,
    )


def _locate(pieces: list[str], text: str) -> list[tuple[int, int]]:
    """Find each splitter piece in ``text``, in order.

    The splitter returns strings, not offsets; pieces overlap, so each search starts
    just after the previous piece's start rather than after its end.
    """
    spans, cursor = [], 0
    for piece in pieces:
        at = text.find(piece, cursor)
        if at < 0:  # the splitter only strips whitespace, so this means a bug upstream
            raise ValueError(f"chunk text not found in its section: {piece[:30]!r}")
        spans.append((at, at + len(piece)))
        cursor = at + 1
    return spans


def _sections(doc: Document, cleaned: CleanText) -> Iterator[tuple[int, str, str, str]]:
    """``(cleaned start, cleaned section text, heading, context line)`` per section.

    Section boundaries are original offsets; this finds the cleaned offsets they map to.
    """
    bounds = [(s.heading, s.start, s.end) for s in doc.sections] or [(doc.title, 0, len(doc.text))]
    for heading, o_start, o_end in bounds:
        c_start, c_end = _cleaned_index(cleaned, o_start), _cleaned_index(cleaned, o_end)
        yield c_start, cleaned.text[c_start:c_end], heading, context_line(doc, heading)


def _spans(doc: Document, cleaned: CleanText, split: Callable[[str], list[tuple[int, int]]]):
    """Split every section with ``split`` and map each piece back to original offsets.

    Yields ``(start, end, heading, search_text)``: the original span and the folded
    context + cleaned piece that embeddings and BM25 read.
    """
    for c_start, part, heading, context in _sections(doc, cleaned):
        if not part.strip():
            continue
        for s, e in split(part):
            start, end = cleaned.to_original(c_start + s, c_start + e)
            yield start, end, heading, fold(f"{context}\n{part[s:e]}")


def chunk_document(
    doc: Document, settings: ChunkSettings = ChunkSettings(), cleaned: CleanText | None = None
) -> list[Chunk]:
    """Split one document into chunks whose ``text`` is ``doc.text[start:end]``."""
    cleaned = cleaned or clean(doc.text)
    splitter = _splitter(settings)
    return [
        Chunk(doc.doc_id, start, end, doc.text[start:end], heading, context_line(doc, heading), search)
        for start, end, heading, search in _spans(doc, cleaned, lambda part: _locate(splitter.split_text(part), part))
    ]


def document_sentences(doc: Document, cleaned: CleanText | None = None) -> list[Sentence]:
    """Every sentence of ``doc``, each with the same context line as its chunks."""
    cleaned = cleaned or clean(doc.text)
    return [
        Sentence(doc.doc_id, start, end, doc.text[start:end], search)
        for start, end, _heading, search in _spans(doc, cleaned, sentence_spans)
    ]


def _cleaned_index(cleaned: CleanText, original_offset: int) -> int:
    """The first cleaned position whose original offset is ≥ ``original_offset``."""
    return bisect.bisect_left(cleaned.offsets, original_offset, 0, len(cleaned.text))
