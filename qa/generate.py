"""Generated answers: the extractive pipeline decides *whether* to answer and *from
what*; an LLM writes the answer; :mod:`qa.verify` lets through only what the cited
passages support; anything that fails falls back to the extractive answer.

For one question (:func:`start`):

1. :func:`qa.answer.answer_question` runs as always: retrieval, sentence selection
   and the refusal decision. A refusal stays a refusal — the LLM is not asked to
   answer from evidence judged too weak.
2. The prompt (:mod:`qa.prompt`) numbers the selected evidence and the top hits.
3. The reply is read as it streams; each sentence, once complete, is checked
   (:func:`qa.verify.check_claim`). A supported sentence is emitted at once
   (:class:`Delta`), its ``[n]`` renumbered to citations that quote the supporting
   sentence of the passage; an unsupported one is dropped and listed.
4. Nothing supported, or an LLM that is unreachable, slow, rate-limited or talks
   garbage before the first supported sentence: the extractive answer, marked
   ``generator="extractive"``, with a warning in the log. A failure after some
   sentences passed keeps those sentences (each of them is verified).

The last event is always :class:`Final` with the whole :class:`~qa.types.Answer`,
and the :class:`Delta` texts join up to exactly its ``answer``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Mapping, Sequence

from qa.errors import LLMError
from qa.llm import ChatModel
from qa.prompt import build_messages, passages_from
from qa.types import Answer, Citation, Document, DroppedClaim, Filters, Turn
from qa.verify import Claim, Passage, check_claim, ends_sentence, renumber, split_sentences

log = logging.getLogger("qa.generate")

# The prompt asks for one to four sentences; a model still writing after twice that
# is repeating itself, and the rest of its reply is not read (closing the stream
# stops the generation on the server too).
MAX_SENTENCES = 8


@dataclass(frozen=True)
class Delta:
    """A piece of the answer text that may be shown now (it passed verification)."""

    text: str


@dataclass(frozen=True)
class Final:
    """The whole answer; always the last event."""

    answer: Answer


@dataclass
class Outcome:
    """What happened while generating (read by ``qa eval`` after the events are consumed)."""

    claims: list[Claim] = field(default_factory=list)  # every sentence the model wrote, checked
    error: str | None = None  # the LLM failure, if any
    asked: bool = False  # False when the extractive answer refused (the LLM is not asked)
    generate_ms: float = 0.0


def pieces(text: str) -> list[str]:
    """Sentence-sized pieces of a finished text that join back to it.

    >>> pieces("根据《甲》:“10分钟。”[1]另据《乙》:“12分钟。”[2]")
    ['根据《甲》:“10分钟。”[1]', '另据《乙》:“12分钟。”[2]']
    """
    done, rest = split_sentences(text, final=True)
    if "".join(done) + rest != text:
        return [text] if text else []
    return done + ([rest] if rest else [])


class Generation:
    """One question on its way through the LLM; iterate :meth:`events` once."""

    def __init__(self, extractive: Answer, chat: ChatModel, passages: Sequence[Passage], history: Sequence[Turn],
                 documents: Mapping[str, Document]):
        self.extractive = extractive
        self._documents = documents  # the passages' documents (for citation metadata and quotes)
        self.chat = chat
        self.passages = {p.n: p for p in passages}
        self.history = tuple(history)
        self.outcome = Outcome(asked=not extractive.refused and bool(passages))
        self._citations: list[Citation] = []
        self._numbers: dict[tuple[str, int, int], int] = {}
        self._kept: list[str] = []

    def messages(self):
        return build_messages(self.extractive.question, self.extractive.lang, list(self.passages.values()),
                              self.history)

    def events(self) -> Iterator[Delta | Final]:
        if not self.outcome.asked:
            yield from self._extractive(())
            return
        t0 = time.perf_counter()
        buffer = ""
        try:
            stream = self.chat.stream(self.messages())
            try:
                for piece in stream:
                    buffer += piece
                    done, buffer = split_sentences(buffer, final=False)
                    for sentence in done:
                        yield from self._take(sentence)
                    if len(self.outcome.claims) >= MAX_SENTENCES:
                        buffer = ""
                        break
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            done, _ = split_sentences(buffer, final=True)
            for sentence in done:
                yield from self._take(sentence)
        except LLMError as exc:
            # Sentences that were complete when the stream broke are still checked.
            done, _ = split_sentences(buffer, final=True)
            for sentence in done:
                if ends_sentence(sentence):
                    yield from self._take(sentence)
            self.outcome.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug on the LLM path must still leave an answer, never a 5xx
            log.exception("generating the answer failed")
            self.outcome.error = f"{type(exc).__name__}: {exc}"
        if self.outcome.error is not None:
            kept = len(self._kept)
            log.warning("%s; %s", self.outcome.error, f"keeping the {kept} verified sentence(s) already given"
                        if kept else "answering with the extractive answer")
        self.outcome.generate_ms = (time.perf_counter() - t0) * 1000
        dropped = tuple(DroppedClaim(c.text.strip(), c.reason) for c in self.outcome.claims if not c.supported)
        if not self._kept:
            if self.outcome.error is None:
                log.warning("no sentence of the LLM's answer was supported by its citations (%d dropped); "
                            "answering with the extractive answer", len(dropped))
            yield from self._extractive(dropped)
            return
        text = self._joiner().join(self._kept)
        timings = dict(self.extractive.timings_ms)
        timings["generate"] = round(self.outcome.generate_ms, 3)
        timings["total"] = round(timings.get("total", 0.0) + self.outcome.generate_ms, 3)
        yield Final(replace(self.extractive, answer=text, citations=tuple(self._citations), timings_ms=timings,
                            generator=self.chat.name, dropped=dropped))

    def _joiner(self) -> str:
        return "" if self.extractive.lang == "zh" else " "

    def _extractive(self, dropped: tuple[DroppedClaim, ...]) -> Iterator[Delta | Final]:
        for piece in pieces(self.extractive.answer):
            yield Delta(piece)
        yield Final(replace(self.extractive, generator="extractive", dropped=dropped))

    def _take(self, sentence: str) -> Iterator[Delta]:
        if not sentence.strip():
            return
        claim = check_claim(sentence, self.passages)
        self.outcome.claims.append(claim)
        if not claim.supported:
            return
        numbers: dict[int, int] = {}
        for n, start, end in claim.support:
            passage = self.passages[n]
            key = (passage.doc_id, start, end)
            if key not in self._numbers:
                self._numbers[key] = len(self._citations) + 1
                self._citations.append(self._citation(self._numbers[key], passage, start, end))
            numbers[n] = self._numbers[key]
        text = renumber(sentence, numbers).strip()
        delta = (self._joiner() if self._kept else "") + text
        self._kept.append(text)
        yield Delta(delta)

    def _citation(self, number: int, passage: Passage, start: int, end: int) -> Citation:
        from qa.answer import _region_label

        doc = self._documents[passage.doc_id]
        return Citation(n=number, doc_id=passage.doc_id, title=doc.title, start=start, end=end,
                        quote=doc.text[start:end], date=doc.date, region=_region_label(doc, self.extractive.lang),
                        source=doc.source)


def start(
    question: str,
    retriever,
    chat: ChatModel,
    history: Sequence[Turn] = (),
    k: int = 5,
    filters: Filters | None = None,
    settings=None,
) -> Generation:
    """Retrieve, select and judge now (an unusable question raises here, before any
    streaming starts); the LLM is called when :meth:`Generation.events` is iterated."""
    from qa.answer import answer_question

    extractive = answer_question(question, retriever, history=history, k=k, filters=filters, settings=settings)
    documents = retriever.data.documents
    passages: list[Passage] = []
    if not extractive.refused:
        evidence = [(c.doc_id, c.start, c.end) for c in extractive.citations]
        hits = [(h.doc_id, h.start, h.end) for h in extractive.hits]
        needed = {d for d, _, _ in evidence + hits}
        passages = passages_from(evidence, hits, {d: documents[d] for d in needed})
    return Generation(extractive, chat, passages, history, {p.doc_id: documents[p.doc_id] for p in passages})


def final_answer(events: Iterator[Delta | Final]) -> Answer:
    """Consume ``events`` and return the final answer."""
    answer = None
    for event in events:
        if isinstance(event, Final):
            answer = event.answer
    if answer is None:  # events always end in Final; a broken generator is a bug
        raise RuntimeError("the generation ended without a final answer")
    return answer


def generate_answer(question: str, retriever, chat: ChatModel, history: Sequence[Turn] = (), k: int = 5,
                    filters: Filters | None = None, settings=None) -> Answer:
    """:func:`start` and wait for the whole answer."""
    return final_answer(start(question, retriever, chat, history, k, filters, settings).events())


def generation_note(answer: Answer) -> str | None:
    """The line ``qa ask`` prints under a generated answer (or a fallback), else None.

    >>> generation_note(Answer("q", "a", False, (), (), "en", "q", generator="llm:qwen",
    ...     dropped=(DroppedClaim("It cost 5 yuan [1].", "figure 5 yuan not in the cited passages"),)))
    'generator: llm:qwen; 1 unsupported sentence dropped:\\n  - It cost 5 yuan [1]. (figure 5 yuan not in the cited passages)'
    """
    if answer.generator == "extractive" and not answer.dropped:
        return None
    line = f"generator: {answer.generator}"
    if answer.dropped:
        n = len(answer.dropped)
        line += f"; {n} unsupported sentence{'s' if n != 1 else ''} dropped:"
        line += "".join(f"\n  - {d.text} ({d.reason})" for d in answer.dropped)
    return line
