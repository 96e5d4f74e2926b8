"""Reports of ``qa eval``: Markdown tables, the JSON summary and a PNG chart.

Everything here reads the summary dict built by :func:`qa.eval.runner.summarize`;
nothing is recomputed, so the three files always agree.

>>> print(md_table(["system", "hit@1"], [["hybrid", 0.5]]))
| system | hit@1 |
| --- | ---: |
| hybrid | 0.500 |
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from qa.eval.metrics import KS

SYSTEM_LABELS = {
    "dense": "dense (ours)",
    "bm25": "bm25 (ours)",
    "hybrid": "hybrid (ours)",
    "peer": "peer: Chatchat FAISS+BM25 ensemble",
}
SHORT_LABELS = {"peer": "peer"}


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3f}"
    return str(value)


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table; columns after the first are right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ks(summary: dict) -> list[int]:
    return sorted(set(KS) | {summary["k"]})


def retrieval_table(summary: dict) -> str:
    ks = _ks(summary)
    header = ["system", *[f"hit@{k}" for k in ks], "MRR@10", "nDCG@10", "p50 ms", "p95 ms"]
    rows = []
    for system in summary["systems"]:
        s = summary["retrieval"][system]["all"]
        lat = summary["latency_ms"].get(f"retrieve:{system}", {})
        rows.append([SYSTEM_LABELS.get(system, system), *[s[f"hit@{k}"] for k in ks], s["mrr@10"], s["ndcg@10"],
                     lat.get("p50"), lat.get("p95")])
    return md_table(header, rows)


def language_table(summary: dict) -> str:
    k = summary["k"]
    langs = list(summary["languages"])
    header = ["system"]
    for lang in langs:
        n = summary["languages"][lang]
        header += [f"{lang} hit@1 (n={n})", f"{lang} hit@{k}", f"{lang} MRR@10"]
    rows = []
    for system in summary["systems"]:
        per = summary["retrieval"][system]["lang"]
        row = [SYSTEM_LABELS.get(system, system)]
        for lang in langs:
            s = per[lang]
            row += [s["hit@1"], s[f"hit@{k}"], s["mrr@10"]]
        rows.append(row)
    return md_table(header, rows)


def type_table(summary: dict) -> str:
    k = summary["k"]
    systems = summary["systems"]
    types = sorted({t for s in systems for t in summary["retrieval"][s]["type"]})
    header = ["type", "n", *[f"{SHORT_LABELS.get(s, s)} hit@{k}" for s in systems]]
    rows = []
    for t in types:
        first = summary["retrieval"][systems[0]]["type"][t]
        rows.append([t, first["n"], *[summary["retrieval"][s]["type"][t][f"hit@{k}"] for s in systems]])
    return md_table(header, rows)


def answer_table(summary: dict) -> str | None:
    answers = summary.get("answers")
    if not answers:
        return None
    ref = answers["refusal"]
    langs = list(answers["containment_lang"])
    header = ["answer containment", *[f"containment {lang}" for lang in langs], "refusal precision", "refusal recall",
              "false-refusal rate", "unanswerable refused", "answerable refused"]
    row = [answers["containment"], *[answers["containment_lang"][lang] for lang in langs], ref["precision"],
           ref["recall"], ref["false_refusal_rate"], f"{ref['correct_refusals']} of {ref['unanswerable']}",
           f"{ref['refused'] - ref['correct_refusals']} of {ref['answerable']}"]
    table = md_table(header, [row])
    per_lang = answers.get("refusal_lang") or {}
    if per_lang:
        rows = []
        for lang, r in per_lang.items():
            rows.append([lang, answers["containment_lang"].get(lang, "–"),
                         f"{r['correct_refusals']} of {r['unanswerable']}",
                         f"{r['refused'] - r['correct_refusals']} of {r['answerable']}", r["false_refusal_rate"]])
        table += "\n\n" + md_table(["language", "answer containment", "unanswerable refused",
                                     "answerable refused", "false-refusal rate"], rows)
    quotes = answers.get("quotes")
    if quotes:
        rows = [["all", quotes["answers"], quotes["first"], quotes["precision"], quotes["per_answer"]]]
        rows += [[lang, q["answers"], q["first"], q["precision"], q["per_answer"]]
                 for lang, q in (answers.get("quotes_lang") or {}).items()]
        table += ("\n\nQuotes of the answered questions (first: the first quote holds a gold answer; "
                  "precision: share of an answer's quotes that do):\n\n"
                  + md_table(["language", "answered", "first quote holds it", "quote precision", "quotes per answer"],
                             rows))
    return table


def latency_table(summary: dict) -> str:
    rows = []
    for stage, s in summary["latency_ms"].items():
        if s.get("n"):
            rows.append([stage, s["n"], s["p50"], s["p95"], s["p99"]])
    return md_table(["stage", "n", "p50 ms", "p95 ms", "p99 ms"], rows)


def portable_path(path: str, root: Path | None = None) -> str:
    """A gold file's path as a report shows it: relative to the repository root, so
    no machine's absolute path is written into the repository.

    >>> portable_path("/srv/ci/shared/eval/dev.jsonl", Path("/srv/ci/qa-gov"))
    '../shared/eval/dev.jsonl'
    >>> portable_path("eval/gold.jsonl")
    'eval/gold.jsonl'
    """
    if not os.path.isabs(path):
        return path
    root = root or Path(__file__).resolve().parents[1]
    return Path(os.path.relpath(path, root)).as_posix()


def markdown_report(summary: dict) -> str:
    idx = summary.get("index", {})
    langs = ", ".join(f"{lang} {n}" for lang, n in summary["languages"].items())
    parts = [
        f"# qa eval: {portable_path(str(summary['gold']))}",
        "",
        f"{summary['items']} questions ({summary['answerable']} answerable: {langs}; "
        f"{summary['unanswerable']} unanswerable), k = {summary['k']}. "
        f"Index: {idx.get('documents')} documents, {idx.get('chunks')} chunks "
        f"(size {idx.get('chunk_size')}/{idx.get('chunk_overlap')}), embedder {idx.get('embedder')}, "
        f"store {idx.get('store', 'local')}.",
        "",
        "## Retrieval (answerable questions, same chunks and embedder for every system)",
        "",
        retrieval_table(summary),
        "",
        "## By language",
        "",
        language_table(summary),
        "",
        "## By question type",
        "",
        type_table(summary),
    ]
    answers = answer_table(summary)
    if answers:
        parts += ["", "## Answers (Pipeline.ask, every question)", "", answers]
    from qa.eval.generative import generative_table

    generated = generative_table(summary)  # present with qa eval --llm-url
    if generated:
        parts += ["", "## Generated answers (LLM) beside extractive ones", "", generated]
    parts += ["", "## Latency (warm, in process)", "", latency_table(summary)]
    notes = list(summary.get("notes", []))
    check = summary.get("min_recall")
    if check:
        notes.append(("passed: " if check["passed"] else "FAILED: ") + check["message"])
    if notes:
        parts += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"


def write_chart(summary: dict, path: Path) -> Path | None:
    """hit@k per system (left) and hit@k per language and system (right) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    systems = summary["systems"]
    if not systems:
        return None
    ks = _ks(summary)
    k = summary["k"]
    langs = list(summary["languages"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        s = summary["retrieval"][system]
        label = SYSTEM_LABELS.get(system, system)
        xs = [j + i * width for j in range(len(ks))]
        left.bar(xs, [s["all"][f"hit@{kk}"] for kk in ks], width, label=label)
        xl = [j + i * width for j in range(len(langs))]
        right.bar(xl, [s["lang"][lang][f"hit@{k}"] for lang in langs], width, label=label)
    centre = width * (len(systems) - 1) / 2
    left.set_xticks([j + centre for j in range(len(ks))], [f"hit@{kk}" for kk in ks])
    left.set_title(f"Retrieval hit@k ({summary['answerable']} answerable questions)")
    right.set_xticks([j + centre for j in range(len(langs))],
                     [f"{lang} (n={summary['languages'][lang]})" for lang in langs])
    right.set_title(f"hit@{k} by question language")
    for ax in (left, right):
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(systems), fontsize=9, frameon=False)
    fig.suptitle(Path(summary["gold"]).name)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(summary: dict, folder: Path) -> list[Path]:
    """Write report.md, report.json and report.png into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "report.md"
    md.write_text(markdown_report(summary), encoding="utf-8")
    js = folder / "report.json"
    js.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    files = [md, js]
    png = write_chart(summary, folder / "report.png")
    if png is not None:
        files.append(png)
    return files
