"""The ``qa`` command: a thin shell over :class:`qa.pipeline.Pipeline`.

Every :class:`~qa.settings.Settings` field is also a flag (``--chunk-size`` ↔
``QA_CHUNK_SIZE`` ↔ ``chunk_size``), accepted before or after the command name.
Library errors become one ``error: …`` line on stderr and a non-zero exit code here
and nowhere else. ``-`` as the question reads one question per line from stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from pydantic import ValidationError

from qa.errors import InputError, QAError
from qa.settings import Settings
from qa.types import Filters, Turn

EXIT_ERROR = 1
EXIT_USAGE = 2


# ---------------------------------------------------------------- settings flags


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_flags(parser: argparse.ArgumentParser, skip: Iterable[str] = ()) -> None:
    """One flag per Settings field; unset flags fall back to env vars, then defaults."""
    group = parser.add_argument_group("settings (also QA_<NAME> environment variables)")
    for name, field in Settings.model_fields.items():
        if name in skip:
            continue
        flags = ["-k", "--k"] if name == "k" else [_flag(name)]
        annotation = field.annotation
        kwargs: dict = {"dest": f"setting_{name}", "default": argparse.SUPPRESS, "help": field.description}
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = name.upper()
        group.add_argument(*flags, **kwargs)


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {k[len("setting_"):]: v for k, v in vars(args).items() if k.startswith("setting_")}
    return Settings(**given)


# ---------------------------------------------------------------- helpers


def _filters(args: argparse.Namespace) -> Filters | None:
    filters = Filters(
        doc_ids=tuple(args.doc or ()),
        region=args.region,
        date_from=args.date_from,
        date_to=args.date_to,
    )
    return None if filters.is_empty() else filters


def _add_filter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--doc", action="append", metavar="DOC_ID", help="only this document (repeatable)")
    parser.add_argument("--region", help="only documents about this region, e.g. 宜昌 or Yichang")
    parser.add_argument("--date-from", metavar="YYYY-MM-DD", help="only documents dated on or after")
    parser.add_argument("--date-to", metavar="YYYY-MM-DD", help="only documents dated on or before")


def _questions(arg: str) -> Iterable[str] | None:
    """Lines of stdin for ``-``; ``None`` for a single question given inline."""
    if arg != "-":
        return None
    return (line.rstrip("\n") for line in sys.stdin)


def _parse_line(line: str, key: str) -> tuple[str, list[Turn]]:
    """A stdin line is a plain question or a JSON object ``{key: ..., "history": [...]}``."""
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line is not valid JSON: {exc.msg}", hint="send one question or JSON object per line") from exc
        question = obj.get(key) or obj.get("question") or obj.get("query") or ""
        history = [Turn(role=t.get("role", "user"), content=str(t.get("content", ""))) for t in obj.get("history", [])]
        return str(question), history
    return text, []


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _run_lines(lines: Iterable[str], key: str, handle: Callable[[str, list[Turn]], dict]) -> int:
    """JSON-lines loop: one object out per non-blank line in; errors are objects too."""
    failed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            question, history = _parse_line(line, key)
            _print_json(handle(question, history))
        except QAError as exc:
            failed += 1
            _print_json({key: line.strip(), "error": {"code": exc.code, "message": str(exc)}})
    return EXIT_ERROR if failed else 0


# ---------------------------------------------------------------- commands


def _pipeline(settings: Settings):
    from qa.pipeline import Pipeline

    return Pipeline(settings)


def cmd_index(args, settings: Settings) -> int:
    pipeline = _pipeline(settings)

    def warn(line: str) -> None:
        print(f"warning: {line}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rembedding {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    report = pipeline.index(Path(args.path) if args.path else None, rebuild=args.rebuild, warn=warn, progress=progress)
    if report.is_noop:
        print(f"index is up to date: {len(report.unchanged)} documents, {report.chunks} chunks, nothing embedded")
    else:
        print(
            f"indexed {len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} deleted, "
            f"{len(report.unchanged)} unchanged documents: {report.chunks} chunks, {report.sentences} sentences, "
            f"{report.embedded_texts} texts embedded, in {settings.index_dir}"
        )
    return 0


def cmd_search(args, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    filters = _filters(args)

    def handle(query: str, _history) -> dict:
        hits = pipeline.search(query, k=settings.k, mode=settings.mode, filters=filters)
        return {"query": query, "hits": [h.to_json() for h in hits]}

    lines = _questions(args.question)
    if lines is not None:
        if not args.json:
            raise InputError("reading questions from stdin (-) needs --json", hint="run `qa search --json -`")
        return _run_lines(lines, "query", handle)
    hits = pipeline.search(args.question, k=settings.k, mode=settings.mode, filters=filters)
    if args.json:
        _print_json({"query": args.question, "hits": [h.to_json() for h in hits]})
        return 0
    if not hits:
        print("no passage found")
    for rank, hit in enumerate(hits, 1):
        meta = " · ".join(x for x in (hit.region, hit.date, hit.source) if x)
        print(f"[{rank}] {hit.title}  ({hit.doc_id} {hit.start}-{hit.end}, score {hit.score:.4f})")
        if meta:
            print(f"    {meta}")
        print("    " + " ".join(hit.text.split())[:300])
    return 0


def cmd_ask(args, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    filters = _filters(args)

    def handle(question: str, history: list[Turn]) -> dict:
        return pipeline.ask(question, history=history, k=settings.k, filters=filters).to_json()

    lines = _questions(args.question)
    if lines is not None:
        if not args.json:
            raise InputError("reading questions from stdin (-) needs --json", hint="run `qa ask --json -`")
        return _run_lines(lines, "question", handle)
    history: list[Turn] = []
    if args.history:
        data = json.loads(Path(args.history).read_text(encoding="utf-8"))
        history = [Turn(role=t["role"], content=t["content"]) for t in data]
    answer = pipeline.ask(args.question, history=history, k=settings.k, filters=filters)
    if args.json:
        _print_json(answer.to_json())
        return 0
    from qa.answer import format_answer_text
    from qa.generate import generation_note

    print(format_answer_text(answer))
    note = generation_note(answer)  # which LLM wrote it, and what verification dropped
    if note:
        print("\n" + note)
    return 0


def cmd_documents(args, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    counts = pipeline.chunk_counts()
    for doc in sorted(pipeline.documents(), key=lambda d: d.doc_id):
        row = {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "region": doc.region,
               "source": doc.source, "chunks": counts.get(doc.doc_id, 0)}
        if args.json:
            _print_json(row)
        else:
            print(f"{doc.doc_id}\t{doc.date or '-'}\t{doc.region or '-'}\t{row['chunks']} chunks\t{doc.title}")
    return 0


def cmd_demo(args, settings: Settings) -> int:
    """Index the bundled sample corpus (if needed) and answer a few sample questions."""
    pipeline = _pipeline(settings)
    report = pipeline.index(None, warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    print(f"index ready in {settings.index_dir}: {report.chunks} chunks from {len(report.added) + len(report.changed) + len(report.unchanged)} documents")
    from qa.answer import format_answer_text

    for question in (
        "What emergency-care radius did Yichang set?",
        "鄂州建成了多少个红色网格驿站?",
        "武汉要用几年时间打造平安中国建设先进城市?",
    ):
        print(f"\n> {question}")
        print(format_answer_text(pipeline.ask(question)))
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from qa.api import serve

    return serve(settings) or 0


def cmd_ui(args, settings: Settings) -> int:
    from qa.ui.app import launch

    return launch(settings) or 0


def cmd_eval(args, settings: Settings) -> int:
    from qa.eval.runner import main as eval_main

    return eval_main(args, settings)


def cmd_calibrate(args, settings: Settings) -> int:
    from qa.calibration import CALIBRATION_FILE, MAX_FALSE_REFUSAL, calibrate_from_gold

    if args.sweep:
        return _sweep(args, settings)
    if args.ablate:
        return _ablate(args, settings)
    output = Path(args.output) if args.output else CALIBRATION_FILE
    limit = MAX_FALSE_REFUSAL if args.max_false_refusal is None else args.max_false_refusal
    cal, model = calibrate_from_gold(_pipeline(settings), args.gold, max_false_refusal=limit, output=output)
    print("feature selection (five-fold CV cost): " + ", ".join(f"{k} {v:.3f}" for k, v in cal.feature_selection.items()))
    print(f"answerability model fitted on {model.n} questions that pass the hard rules:")
    print("  bias " + f"{model.bias:+.3f}  " + "  ".join(f"{f} {w:+.3f}" for f, w in zip(model.features, model.weights)))
    for lang, t in cal.thresholds.items():
        r = cal.reports.get(lang, {})
        print(f"{lang}: threshold {t:.4f}  refuses {r.get('unanswerable', 0) - r.get('missed', 0)}/"
              f"{r.get('unanswerable', 0)} unanswerable, {r.get('false_refusals', 0)}/{r.get('answerable', 0)} answerable")
    for lang, r in cal.cross_validated.items():
        print(f"{lang}, each question held out (five-fold, rules + model + thresholds): refuses "
              f"{r['unanswerable_refused']}/{r['unanswerable']} unanswerable, "
              f"{r['answerable_refused']}/{r['answerable']} answerable")
    for name, langs in cal.leave_one_set_out.items():
        print(f"{name} held out (features, model and thresholds fitted on the other sets): " + ", ".join(
            f"{lang} refuses {r['unanswerable_refused']}/{r['unanswerable']} unanswerable, "
            f"{r['answerable_refused']}/{r['answerable']} answerable" for lang, r in sorted(langs.items())))
    for lang, floor in cal.floors.items():
        print(f"{lang}: relevance floor {floor:.3f} (the least similar answerable tuning question's best sentence)")
    for name, langs in cal.floor_leave_one_set_out.items():
        print(f"{name} held out, floor fitted on the other sets refuses (of those passing the rules): " + ", ".join(
            f"{lang} {r['unanswerable_refused']}/{r['unanswerable']} unanswerable, "
            f"{r['answerable_refused']}/{r['answerable']} answerable" for lang, r in sorted(langs.items())))
    print(f"wrote {output}")
    return 0


def _sweep(args, settings: Settings) -> int:
    """``qa calibrate --sweep NAME=v1,v2`` : a markdown table of answers contained and
    unanswerables refused per tuning set for each value of a sentence-score weight."""
    from qa.calibration import parse_sweep, sweep_weight

    try:
        name, values = parse_sweep(args.sweep)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = sweep_weight(_pipeline(settings), args.gold, name, values)
    sets = list(rows[0]["sets"]) if rows else []
    print(f"# Sweep of {name} (qa calibrate --sweep {args.sweep})\n")
    print("answers that hold a gold string / unanswerable questions refused, per tuning set\n")
    print("| " + " | ".join([name] + sets + ["total"]) + " |")
    print("|" + " ---: |" * (len(sets) + 2))
    for row in rows:
        cells = [f"{r['contained']}/{r['answerable']}, {r['refused']}/{r['unanswerable']}" for r in row["sets"].values()]
        total = sum(r["contained"] + r["refused"] for r in row["sets"].values())
        print("| " + " | ".join([f"{row['value']:g}"] + cells + [str(total)]) + " |")
    return 0


def _ablate(args, settings: Settings) -> int:
    """``qa calibrate --ablate RULE,…``: what each refusal rule alone refuses."""
    from qa.calibration import ABLATABLE, ablate_rules

    names = list(ABLATABLE) if args.ablate == "all" else [n.strip() for n in args.ablate.split(",") if n.strip()]
    try:
        result = ablate_rules(_pipeline(settings), args.gold, names)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# Refusal rules switched off one at a time (qa calibrate --ablate {args.ablate})\n")
    print("Tuning questions that pass the hard rules only without the rule: answers it refuses "
          "wrongly, near misses only it refuses.\n")
    print("| rule | answerable it refuses | unanswerable only it refuses |")
    print("| --- | --- | --- |")
    for name, r in result.items():
        print(f"| {name} | {len(r['answerable'])} {' '.join(r['answerable'])} | "
              f"{len(r['unanswerable'])} {' '.join(r['unanswerable'])} |")
    return 0


def cmd_bench(args, settings: Settings) -> int:
    from qa.eval.bench import main as bench_main

    return bench_main(args, settings)


def cmd_feedback(args, settings: Settings) -> int:
    from qa.ui.feedback import export_feedback

    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    try:
        count = export_feedback(settings.feedback_path(), out)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {count} feedback records", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common)
    parser = argparse.ArgumentParser(
        prog="qa", description="Question answering over Chinese government documents, with citations.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", parents=[common], help="index the sample corpus and answer sample questions")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("index", parents=[common], help="build or update the index of a folder")
    p.add_argument("path", nargs="?", help="folder of documents (default: the bundled sample corpus)")
    p.add_argument("--rebuild", action="store_true", help="ignore the existing index and embed everything")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", parents=[common], help="return the best passages for a question")
    p.add_argument("question", help="the question, or - to read one per line from stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    _add_filter_flags(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", parents=[common], help="answer a question with cited sentences")
    p.add_argument("question", help="the question, or - to read one per line from stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    p.add_argument("--history", metavar="FILE", help="JSON file of earlier turns [{role, content}, ...]")
    _add_filter_flags(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("documents", parents=[common], help="list the indexed documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("serve", parents=[common], help="serve the HTTP API (and the chat UI at /)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ui", parents=[common], help="serve the chat UI")
    p.set_defaults(func=cmd_ui)

    # eval takes every settings flag except --mode, which it redefines to also accept
    # "all"; the value stays out of Settings.mode (dense|bm25|hybrid only).
    p = sub.add_parser("eval", help="score retrieval and answers on a gold set")
    add_settings_flags(p, skip=("mode",))
    p.add_argument("--gold", required=True, help="gold JSONL file")
    p.add_argument("--report", metavar="DIR", help="write report.md, report.json and a chart here "
                   "(default: reports/eval/<gold file name>)")
    p.add_argument("--min-recall", type=float, metavar="R", help="exit 1 if hybrid recall@k is below R")
    p.add_argument("--mode", "--eval-mode", dest="eval_mode", default=None, choices=["dense", "bm25", "hybrid", "all"],
                   help="retrieval mode(s) to score (default: all three plus the peer baseline)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", parents=[common],
                       help="fit the answerability model and choose the refusal thresholds on tuning gold files")
    p.add_argument("--gold", required=True, action="append",
                   help="tuning gold JSONL file (repeatable; never a held-out set)")
    p.add_argument("--max-false-refusal", type=float, default=None, metavar="R",
                   help="the threshold refuses at most this share of the answerable questions that pass "
                   "the hard rules (default: qa.calibration.MAX_FALSE_REFUSAL, 0.01)")
    p.add_argument("-o", "--output", help="file to write (default: qa/calibration.json)")
    p.add_argument("--sweep", metavar="NAME=V1,V2,...",
                   help="instead of fitting, answer the gold files once per value of a sentence-score weight "
                   "(e.g. LIST_WEIGHT=0,0.01,0.02) and print what each value gets right; writes nothing")
    p.add_argument("--ablate", metavar="RULE,...|all",
                   help="instead of fitting, switch each named refusal rule off in turn and list the tuning "
                   "questions that only it refuses (qa.calibration.ABLATABLE); writes nothing")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("bench", parents=[common], help="measure build and query speed, and scale")
    p.add_argument("--report", metavar="DIR", help="write bench.md and bench.json here")
    p.add_argument("--quick", action="store_true", help="smaller runs (for CI smoke tests)")
    p.add_argument("--part", choices=["all", "corpus", "stores", "scale", "growth", "faults"], default="all",
                   help="corpus: build, re-index and query latency (and the local and Milvus stores side by "
                   "side); stores: the build and that comparison only; scale: synthetic vector segments, exact "
                   "and IVF; growth: synthetic corpora of 100 to 10,000 documents; faults: kill -9 during "
                   "uploads and readers during writes (growth and faults are not part of all)")
    p.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help="growth: corpus sizes in documents (default 100 200 1000 2000 10000); "
                   "scale: segment sizes in vectors (default 100000 1000000)")
    p.add_argument("--growth-embedder", metavar="NAME",
                   help="growth: also measure the smallest size with this embedder (e.g. e5-small-q4)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("feedback", parents=[common], help="feedback collected in the chat UI")
    fsub = p.add_subparsers(dest="feedback_command", metavar="ACTION")
    fsub.required = True
    e = fsub.add_parser("export", parents=[common], help="write feedback as JSON lines")
    e.add_argument("-o", "--output", help="file to write (default: stdout)")
    e.set_defaults(func=cmd_feedback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_flag(str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"error: invalid setting: {problems}", file=sys.stderr)
        return EXIT_USAGE
    from qa.serving import limit_blas_threads

    limit_blas_threads(settings.blas_threads)
    try:
        return int(args.func(args, settings) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # unreadable history file, full disk…: one line, not a traceback
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
