"""``qa eval --llm-url … --llm-model …``: the generated answers' row beside the
extractive one.

Every gold question goes through :mod:`qa.generate` with the configured LLM. The
row reports containment (of the answer text, and of the text with its cited quotes,
since an English answer rephrases a Chinese figure as "10 minutes"), refusals,
citation faithfulness before and after verification (:func:`qa.verify.faithfulness`:
share of the model's sentences whose figures occur in the sentence they cite), how
many answers the LLM wrote (the rest fell back to the extractive answer), dropped
sentences, and latency. The extractive row comes from the same run's
``Pipeline.ask`` (its quotes are verbatim, so its faithfulness is 1 by construction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from qa.eval.gold import GoldItem
from qa.eval.metrics import containment_rate, contains_answer, latency_summary, refusal_scores
from qa.verify import Claim, faithfulness


@dataclass(frozen=True)
class GeneratedOutcome:
    id: str
    lang: str
    answerable: bool
    refused: bool
    correct: bool  # the answer text holds a gold answer
    correct_with_quotes: bool  # … the text or one of its cited quotes does
    generator: str
    claims: tuple[Claim, ...]  # every sentence the model wrote, checked
    dropped: int
    error: str | None
    latency_ms: float
    answer: str


def run_generative(pipeline, items: Sequence[GoldItem], k: int, chat,
                   progress: Callable[[str], None] | None = None) -> tuple[GeneratedOutcome, ...]:
    """Ask every item through ``chat`` (a :class:`qa.llm.ChatModel`) on the pipeline's index."""
    from qa.generate import final_answer, start

    say = progress or (lambda _line: None)
    say(f"asking {len(items)} questions through {chat.name}")
    out = []
    for i, item in enumerate(items, 1):
        t = time.perf_counter()
        generation = start(item.question, pipeline.retriever(), chat, k=k, settings=pipeline.settings)
        answer = final_answer(generation.events())
        ms = (time.perf_counter() - t) * 1000
        quotes = " ".join(c.quote for c in answer.citations)
        refused = bool(answer.refused)
        ok = item.answerable and not refused
        out.append(GeneratedOutcome(
            id=item.id, lang=item.lang, answerable=item.answerable, refused=refused,
            correct=ok and contains_answer(answer.answer, item.answers),
            correct_with_quotes=ok and contains_answer(answer.answer + " " + quotes, item.answers),
            generator=answer.generator, claims=tuple(generation.outcome.claims), dropped=len(answer.dropped),
            error=generation.outcome.error, latency_ms=ms, answer=answer.answer,
        ))
        if i % 10 == 0:
            say(f"  {i}/{len(items)}")
    return tuple(out)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarize_generative(outcomes: Sequence[GeneratedOutcome], model: str) -> dict:
    """The generated row's figures (a pure function of the outcomes).

    >>> c = lambda ok, kept: Claim("s", (1,), kept, "" if kept else "x", ((1, 0, 1),), figures_in_support=ok)
    >>> o = GeneratedOutcome("g1", "en", True, False, False, True, "llm:m", (c(True, True), c(False, False)), 1,
    ...                      None, 900.0, "a")
    >>> s = summarize_generative([o], "llm:m")
    >>> s["faithfulness_before"], s["faithfulness_after"], s["containment"], s["containment_with_quotes"]
    (0.5, 1.0, 0.0, 1.0)
    """
    answerable = [o for o in outcomes if o.answerable]
    claims = [c for o in outcomes for c in o.claims]
    kept = [c for c in claims if c.supported]
    asked = [o for o in outcomes if o.claims or o.error]
    ref = refusal_scores([o.refused for o in outcomes], [o.answerable for o in outcomes])
    langs = sorted({o.lang for o in outcomes})
    return {
        "model": model,
        "questions": len(outcomes),
        "containment": _r(containment_rate([o.correct for o in answerable])),
        "containment_with_quotes": _r(containment_rate([o.correct_with_quotes for o in answerable])),
        "containment_lang": {lang: _r(containment_rate([o.correct for o in answerable if o.lang == lang]))
                             for lang in langs},
        "refusal": ref.to_json(),
        "faithfulness_before": _r(faithfulness(claims)),
        "faithfulness_after": _r(faithfulness(kept)),
        "sentences": len(claims),
        "sentences_kept": len(kept),
        "llm_asked": len(asked),
        "llm_answered": sum(1 for o in outcomes if o.generator != "extractive"),
        "llm_errors": sum(1 for o in outcomes if o.error),
        "latency_ms": latency_summary([o.latency_ms for o in outcomes]),
        "per_item": [{"id": o.id, "generator": o.generator, "correct": o.correct, "dropped": o.dropped,
                      "error": o.error, "answer": o.answer[:300]} for o in outcomes],
    }


def generative_table(summary: dict) -> str | None:
    """The extractive row and the generated row, side by side (Markdown)."""
    from qa.eval.report import md_table

    gen = summary.get("generative")
    answers = summary.get("answers")
    if not gen or not answers:
        return None
    ask = summary.get("latency_ms", {}).get("ask", {})
    ref = answers["refusal"]
    g_ref = gen["refusal"]

    def refused(r: dict) -> tuple[str, str]:
        return (f"{r['correct_refusals']} of {r['unanswerable']}",
                f"{r['refused'] - r['correct_refusals']} of {r['answerable']}")

    rows = [
        ["extractive", answers["containment"], answers["containment"], *refused(ref), "1 (verbatim quotes)",
         "1 (verbatim quotes)", "–", ask.get("p50"), ask.get("p95")],
        [gen["model"], gen["containment"], gen["containment_with_quotes"], *refused(g_ref),
         gen["faithfulness_before"], gen["faithfulness_after"],
         f"{gen['llm_answered']} of {gen['llm_asked']} asked ({gen['sentences_kept']} of {gen['sentences']} "
         f"sentences kept)", gen["latency_ms"].get("p50"), gen["latency_ms"].get("p95")],
    ]
    header = ["generator", "containment (answer text)", "containment (text + quotes)", "unanswerable refused",
              "answerable refused", "faithfulness before verification", "after", "answers the LLM wrote",
              "p50 ms", "p95 ms"]
    note = ("\n\nFaithfulness: share of the model's sentences that cite a given passage and whose figures occur in "
            "the sentence(s) of it they cite. Questions the LLM was not asked (refused by the evidence check) and "
            "answers that fell back are counted with their extractive answer.")
    if gen.get("llm_errors"):
        note += f" The LLM failed on {gen['llm_errors']} question(s) (fallback to extractive)."
    return md_table(header, rows) + note


def add_generative(summary: dict, pipeline, items: Sequence[GoldItem], settings, progress=None) -> dict:
    """Run the generated row with ``settings``' LLM and put it into ``summary``."""
    from qa.llm import chat_model_from_settings

    chat = chat_model_from_settings(settings)
    outcomes = run_generative(pipeline, items, settings.k, chat, progress)
    summary["generative"] = summarize_generative(outcomes, chat.name)
    return summary
