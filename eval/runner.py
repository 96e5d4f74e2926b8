"""``qa eval``: retrieval and answer quality on a gold set, beside a peer baseline.

For every answerable gold question each retrieval mode (dense, bm25, hybrid) and the
peer baseline (:mod:`qa.eval.peer`) rank passages of the *same* index; the rank of
the first passage holding the gold evidence gives hit@k, MRR and nDCG. Every
question, answerable or not, then goes through ``Pipeline.ask`` for answer
containment and refusal scores. Latencies are measured on the same calls.

Usage::

    qa eval --gold eval/gold.jsonl                       # all modes + peer, k = 5
    qa eval --gold eval/gold.jsonl --mode bm25 -k 3
    qa eval --gold eval/gold.jsonl --report reports/eval --min-recall 0.9

``--mode`` here also accepts ``all``; it is read by this command only, so the
library's ``Settings.mode`` (dense | bm25 | hybrid) never holds ``all``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from qa.errors import InputError
from qa.eval.gold import GoldItem, load_gold
from qa.eval.metrics import (
    KS,
    containment_rate,
    QuoteScores,
    quote_scores,
    contains_answer,
    first_rank,
    latency_summary,
    passage_holds_evidence,
    refusal_scores,
    retrieval_scores,
)
from qa.settings import Settings
from qa.types import MODES, Chunk

PEER = "peer"
EVAL_MODES = (*MODES, "all")
DEPTH = 10


@dataclass(frozen=True)
class AnswerOutcome:
    id: str
    answerable: bool
    refused: bool
    correct: bool  # answerable, not refused, and the answer text holds a gold answer
    answer: str
    citations: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    quotes: tuple[str, ...] = ()  # the citations' quotes, in citation order


@dataclass(frozen=True)
class EvalRun:
    """Raw outcomes of one evaluation; :func:`summarize` turns them into figures."""

    gold: str
    items: tuple[GoldItem, ...]
    k: int
    modes: tuple[str, ...]  # retrieval systems scored, peer included
    ranks: dict[str, tuple[int | None, ...]]  # system → first-hit rank per answerable item
    latency_ms: dict[str, tuple[float, ...]]  # stage → per-call latency
    answers: tuple[AnswerOutcome, ...] | None
    notes: tuple[str, ...] = ()
    index: dict = field(default_factory=dict)

    @property
    def answerable(self) -> tuple[GoldItem, ...]:
        return tuple(i for i in self.items if i.answerable)


# ---------------------------------------------------------------- scoring one ranking


def rank_of(passages: Sequence[Chunk], item: GoldItem) -> int | None:
    """1-based rank of the first passage that is a hit for ``item`` (``None``: none).

    >>> c = lambda d, t: Chunk(d, 0, len(t), t, "", "", t)
    >>> item = GoldItem("x", "q", "zh", "a.txt", ("10分钟",), "打造10分钟急救圈", "number")
    >>> rank_of([c("b.txt", "打造10分钟急救圈"), c("a.txt", "宜昌打造10分鐘急救圈。")], item)
    2
    """
    if not item.answerable:
        return None
    return first_rank(
        p.doc_id == item.doc and passage_holds_evidence(p.text, item.evidence or "", item.answers)
        for p in passages
    )


def score_system(
    search: Callable[[str], Sequence[Chunk]], items: Sequence[GoldItem]
) -> tuple[tuple[int | None, ...], tuple[float, ...]]:
    """Ranks and per-call latencies of one retrieval system over answerable items."""
    ranks: list[int | None] = []
    latency: list[float] = []
    for item in items:
        t = time.perf_counter()
        passages = search(item.question)
        latency.append((time.perf_counter() - t) * 1000)
        ranks.append(rank_of(passages, item))
    return tuple(ranks), tuple(latency)


# ---------------------------------------------------------------- running


def modes_to_run(requested: str) -> tuple[str, ...]:
    """``all`` → every mode plus the peer; a single mode → just that mode."""
    if requested not in EVAL_MODES:
        raise InputError(f"unknown eval mode {requested!r}", hint=f"choose one of: {', '.join(EVAL_MODES)}")
    return (*MODES, PEER) if requested == "all" else (requested,)


def answers_available() -> bool:
    return importlib.util.find_spec("qa.answer") is not None


def check_documents(items: Sequence[GoldItem], doc_ids: set[str], index_dir) -> None:
    missing = sorted({i.doc for i in items if i.answerable and i.doc not in doc_ids})
    if missing:
        raise InputError(
            f"the gold set names {len(missing)} document(s) that the index in {index_dir} does not hold: "
            + ", ".join(missing[:5]) + ("…" if len(missing) > 5 else ""),
            hint="index the corpus the gold set was written for (`qa index FOLDER`) or point --index-dir at it",
        )


def run_eval(
    pipeline,
    items: Sequence[GoldItem],
    systems: Sequence[str],
    k: int,
    with_answers: bool = True,
    gold: str = "",
    progress: Callable[[str], None] | None = None,
) -> EvalRun:
    """Score ``systems`` (modes and/or ``peer``) and, optionally, answers."""
    say = progress or (lambda _line: None)
    depth = max(DEPTH, k)
    check_documents(items, {d.doc_id for d in pipeline.documents()}, pipeline.index_dir)
    answerable = [i for i in items if i.answerable]
    notes: list[str] = []
    ranks: dict[str, tuple[int | None, ...]] = {}
    latency: dict[str, tuple[float, ...]] = {}
    scored: list[str] = []
    for system in systems:
        if system == PEER:
            search = _peer_search(pipeline, depth, notes, say)
            if search is None:
                continue
        else:
            def search(q: str, _mode=system) -> list[Chunk]:
                return [h.chunk for h in pipeline.search(q, k=depth, mode=_mode)]

        search(answerable[0].question if answerable else "warm-up")  # load model/tokenizer off the clock
        say(f"scoring {system} on {len(answerable)} answerable questions")
        ranks[system], latency[f"retrieve:{system}"] = score_system(search, answerable)
        scored.append(system)

    answers: tuple[AnswerOutcome, ...] | None = None
    if with_answers:
        if answers_available():
            say(f"asking {len(items)} questions")
            answers, ask_latency = _ask_all(pipeline, items, k)
            latency.update(ask_latency)
        else:
            notes.append("answers not scored: the answer engine (qa.answer) is not installed")

    snapshot = pipeline.retriever().snapshot  # index facts for the report
    index = {
        "dir": str(pipeline.index_dir),
        "store": pipeline.settings.store,
        "version": snapshot.version,
        "embedder": snapshot.settings.embedder,
        "documents": len(pipeline.documents()),
        "chunks": snapshot.n_chunks,
        "sentences": snapshot.n_sentences,
        "chunk_size": snapshot.settings.chunk_size,
        "chunk_overlap": snapshot.settings.chunk_overlap,
    }
    return EvalRun(gold, tuple(items), k, tuple(scored), ranks, latency, answers, tuple(notes), index)


def _peer_search(pipeline, depth: int, notes: list[str], say) -> Callable[[str], list[Chunk]] | None:
    from qa.errors import ConfigError

    try:
        from qa.eval.peer import PeerRetriever
    except ConfigError as exc:
        notes.append(f"peer not scored: {exc}")
        return None
    say("building the peer baseline over the index's chunks and vectors")
    t = time.perf_counter()
    with pipeline.store.reading():
        snapshot = pipeline.store.snapshot()  # the same state the pipeline searches
        peer = PeerRetriever.from_index(snapshot, pipeline.embedder, top_k=depth)
    notes.append(f"peer built in {time.perf_counter() - t:.2f} s over {snapshot.n_chunks} chunks (no re-embedding)")
    return lambda q: [h.chunk for h in peer.search(q, depth)]


def _ask_all(pipeline, items: Sequence[GoldItem], k: int):
    outcomes: list[AnswerOutcome] = []
    # "ask" is our wall clock around the call; "ask:<stage>" are Answer.timings_ms.
    latency: dict[str, list[float]] = {"ask": []}
    if items:
        pipeline.ask(items[0].question, k=k)  # warm-up off the clock
    for item in items:
        t = time.perf_counter()
        answer = pipeline.ask(item.question, k=k)
        latency["ask"].append((time.perf_counter() - t) * 1000)
        for stage, ms in (answer.timings_ms or {}).items():
            latency.setdefault(f"ask:{stage}", []).append(float(ms))
        refused = bool(answer.refused)
        outcomes.append(
            AnswerOutcome(
                id=item.id,
                answerable=item.answerable,
                refused=refused,
                correct=item.answerable and not refused and contains_answer(answer.answer, item.answers),
                answer=answer.answer,
                citations=len(answer.citations),
                timings_ms=dict(answer.timings_ms or {}),
                quotes=tuple(c.quote for c in answer.citations),
            )
        )
    return tuple(outcomes), {stage: tuple(v) for stage, v in latency.items()}


# ---------------------------------------------------------------- summary


def _ks(k: int) -> tuple[int, ...]:
    return tuple(sorted(set(KS) | {k}))


def summarize(run: EvalRun) -> dict:
    """Every figure of the report, as plain JSON-ready data (a pure function of ``run``)."""
    answerable = run.answerable
    ks = _ks(run.k)
    by_lang: dict[str, list[int]] = {}
    by_type: dict[str, list[int]] = {}
    for pos, item in enumerate(answerable):
        by_lang.setdefault(item.lang, []).append(pos)
        by_type.setdefault(item.type, []).append(pos)

    def scores(system: str, positions: Sequence[int] | None = None) -> dict:
        ranks = run.ranks[system]
        picked = ranks if positions is None else [ranks[p] for p in positions]
        return retrieval_scores(picked, ks).to_json()

    retrieval = {}
    for system in run.modes:
        retrieval[system] = {
            "all": scores(system),
            "lang": {lang: scores(system, pos) for lang, pos in sorted(by_lang.items())},
            "type": {t: scores(system, pos) for t, pos in sorted(by_type.items())},
        }
    out: dict = {
        "gold": run.gold,
        "k": run.k,
        "items": len(run.items),
        "answerable": len(answerable),
        "unanswerable": len(run.items) - len(answerable),
        "languages": {lang: len(p) for lang, p in sorted(by_lang.items())},
        "systems": list(run.modes),
        "retrieval": retrieval,
        "latency_ms": {stage: latency_summary(v) for stage, v in run.latency_ms.items()},
        "index": run.index,
        "notes": list(run.notes),
        "per_item": _per_item(run),
    }
    if run.answers is not None:
        correct = [a.correct for a in run.answers if a.answerable]
        ref = refusal_scores([a.refused for a in run.answers], [a.answerable for a in run.answers])
        by_lang_ans: dict[str, list[bool]] = {}
        lang_of = {i.id: i.lang for i in run.items}
        gold_of = {i.id: i.answers for i in run.items}
        for a in run.answers:
            if a.answerable:
                by_lang_ans.setdefault(lang_of[a.id], []).append(a.correct)
        cr = containment_rate(correct)
        out["answers"] = {
            "containment": None if cr is None else round(cr, 4),
            "containment_lang": {
                lang: round(containment_rate(v) or 0.0, 4) for lang, v in sorted(by_lang_ans.items())
            },
            "refusal": ref.to_json(),
            "quotes": _quotes(run.answers, gold_of).to_json(),
            "quotes_lang": {
                lang: _quotes(group, gold_of).to_json()
                for lang, group in sorted(_group_by(run.answers, lambda a: lang_of[a.id]).items())
            },
            "refusal_lang": {
                lang: refusal_scores([a.refused for a in group], [a.answerable for a in group]).to_json()
                for lang, group in sorted(_group_by(run.answers, lambda a: lang_of[a.id]).items())
            },
        }
    if run.k not in KS:
        out["note_k"] = f"hit@{run.k} is the configured k"
    return out


def _quotes(outcomes, gold_of: dict) -> QuoteScores:
    answered = [a for a in outcomes if a.answerable and not a.refused]
    return quote_scores([a.quotes for a in answered], [gold_of[a.id] for a in answered])


def _group_by(rows, key) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _per_item(run: EvalRun) -> list[dict]:
    answers = {a.id: a for a in run.answers} if run.answers is not None else {}
    pos_of = {item.id: p for p, item in enumerate(run.answerable)}
    rows = []
    for item in run.items:
        row: dict = {"id": item.id, "lang": item.lang, "type": item.type, "doc": item.doc}
        if item.id in pos_of:
            row["rank"] = {s: run.ranks[s][pos_of[item.id]] for s in run.modes}
        a = answers.get(item.id)
        if a is not None:
            row.update(refused=a.refused, correct=a.correct, answer=a.answer[:300])
        rows.append(row)
    return rows


def recall_check(summary: dict, min_recall: float | None) -> tuple[bool, str]:
    """Whether hybrid hit@k (or the one mode scored) reaches ``min_recall``.

    >>> recall_check({"k": 5, "retrieval": {"hybrid": {"all": {"hit@5": 0.8}}}}, 0.9)
    (False, 'hybrid recall@5 = 0.800 is below --min-recall 0.900')
    """
    if min_recall is None:
        return True, ""
    k = summary["k"]
    retrieval = summary["retrieval"]
    system = "hybrid" if "hybrid" in retrieval else next((s for s in retrieval if s != PEER), None)
    if system is None:
        return False, "no retrieval mode was scored, so --min-recall cannot be checked"
    value = retrieval[system]["all"][f"hit@{k}"]
    if value < min_recall:
        return False, f"{system} recall@{k} = {value:.3f} is below --min-recall {min_recall:.3f}"
    return True, f"{system} recall@{k} = {value:.3f} meets --min-recall {min_recall:.3f}"


# ---------------------------------------------------------------- CLI entry


def requested_mode(args) -> str:
    """``--mode`` of ``qa eval`` (which accepts ``all``), else the global ``--mode``, else all."""
    explicit = getattr(args, "eval_mode", None)
    if explicit:
        return explicit
    return getattr(args, "setting_mode", None) or "all"


def default_report_dir(gold: Path) -> Path:
    return Path("reports") / "eval" / gold.stem


def main(args, settings: Settings) -> int:
    from qa.eval.report import markdown_report, write_report
    from qa.pipeline import Pipeline

    gold_path = Path(args.gold)
    items = load_gold(gold_path)
    requested = requested_mode(args)
    systems = modes_to_run(requested)
    if requested in MODES and settings.mode != requested:
        # A single mode is the system under test: ask() retrieves with it too.
        settings = settings.model_copy(update={"mode": requested})
    min_recall = getattr(args, "min_recall", None)
    if min_recall is not None and not 0.0 <= min_recall <= 1.0:
        raise InputError(f"--min-recall must be between 0 and 1, got {min_recall}", hint="e.g. --min-recall 0.9")

    # With --llm-url the usual rows stay extractive and the LLM gets a row of its own
    # (qa/eval/generative.py), on the same index and questions.
    llm_settings = settings if settings.llm_url else None
    settings = settings.model_copy(update={"llm_url": None})
    pipeline = Pipeline(settings)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    run = run_eval(pipeline, items, systems, settings.k, with_answers=True, gold=str(gold_path), progress=log)
    summary = summarize(run)
    if llm_settings is not None:
        from qa.eval.generative import add_generative

        add_generative(summary, pipeline, items, llm_settings, progress=log)
    ok, message = recall_check(summary, min_recall)
    summary["min_recall"] = {"value": min_recall, "passed": ok, "message": message} if min_recall is not None else None

    report_dir = Path(args.report) if getattr(args, "report", None) else default_report_dir(gold_path)
    files = write_report(summary, report_dir)
    print(markdown_report(summary))
    log("report: " + ", ".join(str(f) for f in files))
    for note in summary["notes"]:
        log(f"note: {note}")
    if message:
        print(("" if ok else "FAILED: ") + message, file=sys.stderr if ok else sys.stdout)
    return 0 if ok else 1

