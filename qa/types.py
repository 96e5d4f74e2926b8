"""The records that flow between pipeline stages.

Every stage takes and returns these frozen dataclasses, never loose dicts, so a
field rename is a type error rather than a silent ``KeyError`` three stages later.
Offsets (``start``/``end``) always index the document's *original* text
(``Document.text``), so ``doc.text[hit.start:hit.end]`` is what the user is shown.

>>> doc = Document(doc_id="a.txt", text="宜昌打造10分钟急救圈。", title="宜昌", date=None,
...                source=None, region="宜昌", sections=(), content_hash="x")
>>> doc.text[2:9]
'打造10分钟急'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class Section:
    """A titled stretch of a document, e.g. one speech of a compilation."""

    heading: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One source file after decoding and metadata extraction.

    ``text`` is the decoded file text (for PDF/DOCX/HTML: the extracted text) and is
    what every offset refers to. ``doc_id`` is the path relative to the corpus root.
    """

    doc_id: str
    text: str
    title: str
    date: str | None  # ISO "YYYY-MM-DD" (or "YYYY-MM") when the text states one
    source: str | None  # publisher, e.g. 三峡日报
    region: str | None  # city/prefecture the document is about, e.g. 宜昌市
    sections: tuple[Section, ...]
    content_hash: str

    def section_at(self, offset: int) -> Section | None:
        """The section containing ``offset`` (the last one that starts at or before it)."""
        found = None
        for section in self.sections:
            if section.start <= offset:
                found = section
            else:
                break
        return found


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: ``text == document.text[start:end]``.

    ``context`` is the document title/region/section line that is prepended to the
    passage for embedding and BM25, so a passage that never names its city is still
    found by a question that does.
    """

    doc_id: str
    start: int
    end: int
    text: str
    section: str
    context: str
    search_text: str  # folded context + cleaned passage: what embeddings and BM25 see


@dataclass(frozen=True)
class Sentence:
    """One sentence of the corpus (``text == document.text[start:end]``).

    Sentences are embedded too: a chunk's dense score is the best of its own score
    and its sentences' scores, and answers quote sentences, not whole chunks.
    """

    doc_id: str
    start: int
    end: int
    text: str
    search_text: str


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some documents, a region, or a date range (inclusive)."""

    doc_ids: tuple[str, ...] = ()
    region: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def is_empty(self) -> bool:
        return not (self.doc_ids or self.region or self.date_from or self.date_to)


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its provenance and scores."""

    chunk: Chunk
    score: float
    title: str
    date: str | None = None
    source: str | None = None
    region: str | None = None
    dense_score: float | None = None
    bm25_score: float | None = None

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def start(self) -> int:
        return self.chunk.start

    @property
    def end(self) -> int:
        return self.chunk.end

    @property
    def text(self) -> str:
        return self.chunk.text

    def to_json(self) -> dict:
        """The wire shape shared by ``qa search --json`` and ``POST /v1/retrieve``."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True)
class Citation:
    """A quoted sentence: ``quote == document.text[start:end]``."""

    n: int
    doc_id: str
    title: str
    start: int
    end: int
    quote: str
    date: str | None = None
    region: str | None = None
    source: str | None = None

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation, used to resolve follow-ups."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class DroppedClaim:
    """A sentence an LLM wrote that verification did not let through, and why."""

    text: str
    reason: str

    def to_json(self) -> dict:
        return {"text": self.text, "reason": self.reason}


@dataclass(frozen=True)
class Answer:
    """The result of ``Pipeline.ask``: what the chat UI, HTTP API and CLI all show."""

    question: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    lang: str
    retrieval_query: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Who wrote ``answer``: "extractive" (quoted sentences) or "llm:<model>" (a
    # generated answer whose every sentence passed qa.verify).
    generator: str = "extractive"
    # Generated sentences that were not supported by what they cite (not shown).
    dropped: tuple[DroppedClaim, ...] = ()

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "generator": self.generator,
            "dropped": [d.to_json() for d in self.dropped],
        }
