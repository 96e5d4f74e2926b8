"""Request and response bodies of the HTTP API (``qa.api``), with OpenAPI examples.

These pydantic models exist only at the HTTP edge: handlers turn them into the
pipeline's frozen dataclasses (:class:`qa.types.Filters`, :class:`qa.types.Turn`)
straight away, and responses are built from the dataclasses' ``to_json()`` so the
HTTP API and ``qa search --json`` / ``qa ask --json`` print the same objects.

>>> RetrieveRequest(query="宜昌打造多少分钟急救圈?", k=3).to_filters() is None
True
>>> FiltersIn(region="宜昌").to_filters()
Filters(doc_ids=(), region='宜昌', date_from=None, date_to=None)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.types import Filters, Turn

# A date filter is compared with a document's ISO date, which may be a month only.
_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"
# Hard caps that keep one request cheap to parse; the configurable question limit
# (Settings.max_question_chars) is checked by the handler on top of these.
MAX_TEXT = 20_000
MAX_TURNS = 50
MAX_DOC_IDS = 100


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. invalid_input, not_found, no_index")
    message: str = Field(description="What was wrong and how to fix it")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer of the API has this shape."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "not_found", "message": "no document 'x.txt' in the index"}}]}
    )
    error: ErrorBody


class FiltersIn(BaseModel):
    """Restrict retrieval to some documents, a region, or an inclusive date range."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[str] = Field(default_factory=list, max_length=MAX_DOC_IDS, description="Only these documents")
    region: str | None = Field(None, max_length=100, description="Only documents about this region, e.g. 宜昌 or Yichang")
    date_from: str | None = Field(None, pattern=_DATE, description="Only documents dated on or after (YYYY[-MM[-DD]])")
    date_to: str | None = Field(None, pattern=_DATE, description="Only documents dated on or before (YYYY[-MM[-DD]])")

    def to_filters(self) -> Filters | None:
        filters = Filters(tuple(self.doc_ids), self.region or None, self.date_from, self.date_to)
        return None if filters.is_empty() else filters


class _WithFilters(BaseModel):
    filters: FiltersIn | None = Field(None, description="Optional restrictions; omit to search everything")

    def to_filters(self) -> Filters | None:
        return self.filters.to_filters() if self.filters else None


class RetrieveRequest(_WithFilters):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "宜昌打造多少分钟急救圈?", "k": 5, "mode": "hybrid"},
                {"query": "How many red grid stations did Ezhou build?", "k": 3,
                 "filters": {"region": "鄂州", "date_from": "2021-01-01"}},
            ]
        },
    )

    query: str = Field(max_length=MAX_TEXT, description="The question or search words (Chinese or English)")
    k: int | None = Field(None, ge=1, le=100, description="Number of passages (default: the server's k)")
    mode: Literal["dense", "bm25", "hybrid"] | None = Field(None, description="Retrieval mode (default: the server's)")


class HitOut(BaseModel):
    doc_id: str
    title: str
    text: str = Field(description="The passage: the document's text[start:end]")
    start: int
    end: int
    score: float


class RetrieveResponse(BaseModel):
    query: str
    hits: list[HitOut]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT)

    def to_turn(self) -> Turn:
        return Turn(role=self.role, content=self.content)


class AskRequest(_WithFilters):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "宜昌打造多少分钟急救圈?", "k": 5},
                {"question": "And Wuhan?", "history": [
                    {"role": "user", "content": "What emergency-care radius did Yichang set?"},
                    {"role": "assistant", "content": "Yichang: 10 minutes in the central city [1]."},
                ]},
                {"question": "鄂州建成了多少个红色网格驿站?", "stream": True},
            ]
        },
    )

    question: str = Field(max_length=MAX_TEXT, description="The question (Chinese or English)")
    history: list[TurnIn] = Field(default_factory=list, max_length=MAX_TURNS,
                                  description="Earlier turns, oldest first, to resolve follow-up questions")
    k: int | None = Field(None, ge=1, le=100, description="Passages to read (default: the server's k)")
    stream: bool = Field(False, description="Send Server-Sent Events: delta pieces, then answer, then done")


class CitationOut(BaseModel):
    n: int = Field(description="The number used in the answer's [n] markers")
    doc_id: str
    title: str
    start: int
    end: int
    quote: str = Field(description="The cited sentence: the document's text[start:end]")


class DroppedOut(BaseModel):
    text: str = Field(description="A sentence the LLM wrote that its citations do not support (not shown)")
    reason: str = Field(description="Why it was dropped, e.g. figure 12 minute not in the cited passages")


class AnswerOut(BaseModel):
    question: str
    answer: str
    refused: bool = Field(description="True when the documents do not answer the question")
    citations: list[CitationOut]
    hits: list[HitOut]
    generator: str = Field("extractive", description='Who wrote the answer: "extractive" (quoted sentences) '
                           'or "llm:<model>" (generated, every sentence verified against its citations)')
    dropped: list[DroppedOut] = Field(default_factory=list, description="Generated sentences dropped as unsupported")


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str | None
    region: str | None
    source: str | None
    chunks: int = Field(description="Number of indexed passages")


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class SectionOut(BaseModel):
    heading: str
    start: int
    end: int


class DocumentOut(DocumentSummary):
    text: str
    sections: list[SectionOut]
    content_hash: str


class IndexReport(BaseModel):
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: int = Field(description="Number of documents left as they were")
    chunks: int
    embedded_texts: int


class WriteResponse(BaseModel):
    doc_id: str
    index: IndexReport


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    documents: int


# ------------------------------------------------------------ OpenAI-compatible chat


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One OpenAI chat message; unknown keys (name, tool_calls, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ChatRequest(BaseModel):
    """OpenAI chat-completions request. Sampling options (temperature, max_tokens,
    …) mean nothing to an extractive answerer and are accepted and ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"model": "qa-gov", "messages": [{"role": "user", "content": "宜昌打造多少分钟急救圈?"}]},
                {"model": "qa-gov", "stream": True, "messages": [
                    {"role": "system", "content": "You answer from government documents."},
                    {"role": "user", "content": "What emergency-care radius did Yichang set?"},
                    {"role": "assistant", "content": "10 minutes in the central city [1]."},
                    {"role": "user", "content": "And Wuhan?"},
                ]},
            ]
        },
    )

    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS + 1)
    model: str | None = Field(None, max_length=200, description="Echoed back; the server has one answerer")
    stream: bool | None = False
    # Extensions (pass them with the SDK's extra_body=...).
    k: int | None = Field(None, ge=1, le=100, description="Extension: passages to read")
    filters: FiltersIn | None = Field(None, description="Extension: retrieval restrictions")


class ChatOutMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"] = "assistant"
    content: str
    citations: list[CitationOut] = Field(description="Extension: the sentences behind the [n] markers")
    refused: bool = Field(description="Extension: the documents do not answer the question")
    generator: str = Field("extractive", description='Extension: "extractive" or "llm:<model>"')
    dropped: list[DroppedOut] = Field(default_factory=list, description="Extension: generated sentences dropped as unsupported")


class ChatChoice(BaseModel):
    index: int
    message: ChatOutMessage
    finish_reason: str
    logprobs: Any | None = None


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
