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

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from qa.types import Filters, Turn

# A date filter is compared with a document's ISO date, which may be a month only.
_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"
# Hard caps that keep one request cheap to parse; the configurable question limit
# (Settings.max_question_chars) is checked by the handler on top of these.
MAX_TEXT = 20_000
MAX_TURNS = 50
MAX_DOC_IDS = 100
# What the server accepts, stated in the schema so that generated clients and the
# server agree (the handler enforces it and answers 400 otherwise). NON_BLANK: one
# character that is not white space. HAS_WORD: one letter or digit (str.isalnum),
# spelled for both dialects: [\p{L}\p{N}] for ECMA-262 (JavaScript) and Rust
# validators, [^\W_] for Python's re, whose \w is Unicode.
NON_BLANK = r"\S"
HAS_WORD = r"[\p{L}\p{N}]|[^\W_]"
_HAS_WORD_PY = re.compile(r"[^\W_]")


def _json_integer(value: object) -> object:
    """JSON Schema counts 5.0 as an integer; the models are strict, so it is made 5
    here (2.5, "5" and true stay what they are and are refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# k: a JSON integer (5 and 5.0, not "5", 2.5 or true) from 1 to 100.
K = Annotated[int, Field(ge=1, le=100), BeforeValidator(_json_integer)]


def has_word(text: str) -> bool:
    """Whether ``text`` has a letter or digit in any script (the schema's HAS_WORD).

    >>> has_word("宜昌?"), has_word("？！…"), has_word("__")
    (True, False, False)
    """
    return _HAS_WORD_PY.search(text) is not None


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

    model_config = ConfigDict(extra="forbid", strict=True)

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
    # strict: the types the schema states, no coercion (0 is not false, "5" is not 5).
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"query": "宜昌打造多少分钟急救圈?", "k": 5, "mode": "hybrid"},
                {"query": "How many red grid stations did Ezhou build?", "k": 3,
                 "filters": {"region": "鄂州", "date_from": "2021-01-01"}},
            ]
        },
    )

    query: str = Field(max_length=MAX_TEXT, description="The question or search words (Chinese or English); "
                       "not blank, at most the server's question limit (2,000 characters by default)",
                       json_schema_extra={"minLength": 1, "pattern": NON_BLANK})
    k: K | None = Field(None, description="Number of passages (default: the server's k)")
    mode: Literal["dense", "bm25", "hybrid"] | None = Field(None, description="Retrieval mode (default: the server's)")


class HitOut(BaseModel):
    doc_id: str
    title: str
    text: str = Field(description="The passage: the document's text[start:end]")
    start: int
    end: int
    score: float


_HIT = {"doc_id": "yichang.txt", "title": "推进市域治理现代化", "text": "打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈。", "start": 120, "end": 151, "score": 0.8731}
_CITATION = {"n": 1, "doc_id": "yichang.txt", "title": "推进市域治理现代化", "start": 120, "end": 151, "quote": "打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈。"}
_REPORT = {"added": ["report.txt"], "changed": [], "deleted": [], "unchanged": 4, "chunks": 12, "embedded_texts": 9}


def _example(value: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class RetrieveResponse(BaseModel):
    model_config = _example({"query": "宜昌打造多少分钟急救圈?", "hits": [_HIT]})

    query: str
    hits: list[HitOut]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT)

    def to_turn(self) -> Turn:
        return Turn(role=self.role, content=self.content)


class AskRequest(_WithFilters):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
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

    question: str = Field(max_length=MAX_TEXT, description="The question (Chinese or English): at least one letter "
                          "or digit, at most the server's question limit (2,000 characters by default)",
                          json_schema_extra={"minLength": 1, "pattern": HAS_WORD})
    history: list[TurnIn] = Field(default_factory=list, max_length=MAX_TURNS,
                                  description="Earlier turns, oldest first, to resolve follow-up questions")
    k: K | None = Field(None, description="Passages to read (default: the server's k)")
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
    model_config = _example({"question": "宜昌打造多少分钟急救圈?", "refused": False, "citations": [_CITATION],
                             "answer": "根据《推进市域治理现代化》:“打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈。”[1]",
                             "hits": [_HIT]})

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


_SUMMARY = {"doc_id": "yichang.txt", "title": "推进市域治理现代化", "date": "2022-01-14", "region": "宜昌市",
            "source": "三峡日报", "chunks": 3}


class DocumentList(BaseModel):
    model_config = _example({"documents": [_SUMMARY]})

    documents: list[DocumentSummary]


class SectionOut(BaseModel):
    heading: str
    start: int
    end: int


class DocumentOut(DocumentSummary):
    model_config = _example({**_SUMMARY, "text": "推进市域治理现代化\n来源:三峡日报 2022年01月14日\n\n宜昌市委…",
                             "sections": [], "content_hash": "9cda43de7004e204" + "0" * 48})

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
    model_config = _example({"doc_id": "report.txt", "index": _REPORT})

    doc_id: str
    index: IndexReport


class Health(BaseModel):
    model_config = _example({"status": "ok"})

    status: str


class Ready(BaseModel):
    model_config = _example({"status": "ready", "documents": 5})

    status: str
    documents: int


# ------------------------------------------------------------ OpenAI-compatible chat


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None


class TextPart(BaseModel):
    """The one content part a user message may have instead of a string."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT, description="The question: at least one letter or digit",
                      json_schema_extra={"minLength": 1, "pattern": HAS_WORD})


class UserMessage(BaseModel):
    """A user message: the last one is the question, earlier ones are history. Its
    text needs a letter or digit and fits the server's question limit."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["user"]
    content: Annotated[str, Field(max_length=MAX_TEXT, json_schema_extra={"minLength": 1, "pattern": HAS_WORD})] \
        | Annotated[list[TextPart], Field(min_length=1, max_length=1)] = Field(
        description="The text, or one text part ([{\"type\": \"text\", \"text\": ...}])")

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class OtherMessage(BaseModel):
    """A system, developer, assistant, tool or function message; assistant messages
    are history, the others are read and ignored. Unknown keys (name, tool_calls, …)
    are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


ChatMessage = Annotated[Union[UserMessage, OtherMessage], Field(discriminator="role")]


class ChatRequest(BaseModel):
    """OpenAI chat-completions request. Sampling options (temperature, max_tokens,
    …) mean nothing to an extractive answerer and are accepted and ignored."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
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

    messages: list[ChatMessage] = Field(
        min_length=1, max_length=MAX_TURNS + 1,
        description="The conversation, oldest first; at least one user message (the last one is the question)",
        json_schema_extra={"contains": {"type": "object", "required": ["role"],
                                        "properties": {"role": {"const": "user"}}}})
    model: str | None = Field(None, max_length=200, description="Echoed back; the server has one answerer")
    stream: bool | None = Field(False, description="Send Server-Sent Events in OpenAI's chunk format, then "
                                                   "`data: [DONE]`")
    # Extensions (pass them with the SDK's extra_body=...).
    k: K | None = Field(None, description="Extension: passages to read")
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
    model_config = _example({
        "id": "chatcmpl-1f0c", "object": "chat.completion", "created": 1760000000, "model": "qa-gov",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
            "role": "assistant", "content": "Yichang: 10 minutes in the central city [1].", "refusal": None,
            "citations": [_CITATION], "refused": False}}]})

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
    model_config = _example({"object": "list", "data": [{"id": "qa-gov", "object": "model", "created": 0,
                                                         "owned_by": "qa-gov"}]})

    object: Literal["list"] = "list"
    data: list[ModelCard]
