"""Gold sets: loading and validation of the JSONL format ``qa eval`` scores against.

One JSON object per line::

    {"id": "g001", "question": "…", "lang": "zh", "doc": "000_….txt",
     "answers": ["李华平"], "evidence": "…李华平在接受记者采访时表示", "type": "who"}

``doc`` is ``null`` for a question the corpus cannot answer; then ``answers`` is
empty and ``evidence`` is ``null``. Every problem is reported with its file, line
and how to fix it, all at once rather than one per run.

>>> item = parse_gold_line('{"id": "x1", "question": "宜昌打造多少分钟急救圈?", "lang": "zh", '
...     '"doc": "a.txt", "answers": ["10分钟"], "evidence": "打造10分钟急救圈", "type": "number"}')
>>> item.answerable, item.answers
(True, ('10分钟',))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from qa.errors import InputError

FIELDS = ("id", "question", "lang", "doc", "answers", "evidence", "type")
LANGS = ("zh", "en")


class GoldError(InputError):
    """A gold file that cannot be scored; ``problems`` lists every bad line."""

    code = "invalid_gold"

    def __init__(self, message: str, problems: Iterable[str] = (), hint: str | None = None):
        self.problems = tuple(problems)
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    lang: str  # zh | en: the language of the question
    doc: str | None  # doc_id holding the answer; None: unanswerable from the corpus
    answers: tuple[str, ...]  # acceptable answer strings, each inside ``evidence``
    evidence: str | None  # a verbatim stretch of ``doc`` that holds an answer
    type: str  # question type, e.g. number, who, paraphrase, unanswerable

    @property
    def answerable(self) -> bool:
        return self.doc is not None


def _problem(where: str, what: str, fix: str) -> str:
    return f"{where}: {what}; {fix}"


def _check_fields(obj: dict, where: str) -> list[str]:
    problems: list[str] = []
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        problems.append(_problem(where, f"missing field(s) {', '.join(missing)}",
                                 f"every line needs all of {', '.join(FIELDS)} (doc/evidence may be null)"))
    extra = sorted(set(obj) - set(FIELDS))
    if extra:
        problems.append(_problem(where, f"unknown field(s) {', '.join(extra)}",
                                 f"remove them or fix the spelling; the fields are {', '.join(FIELDS)}"))
    if missing:
        return problems
    for name in ("id", "question", "type"):
        if not isinstance(obj[name], str) or not obj[name].strip():
            problems.append(_problem(where, f"{name} must be a non-empty string, got {obj[name]!r}",
                                     f"set {name} to text"))
    if obj["lang"] not in LANGS:
        problems.append(_problem(where, f"lang must be one of {', '.join(LANGS)}, got {obj['lang']!r}",
                                 "use zh for a Chinese question and en for an English one"))
    answers = obj["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        problems.append(_problem(where, f"answers must be a list of non-empty strings, got {answers!r}",
                                 'write e.g. "answers": ["10分钟"] (or [] for an unanswerable question)'))
        answers = []
    doc, evidence = obj["doc"], obj["evidence"]
    if doc is None:
        if answers or evidence not in (None, ""):
            problems.append(_problem(where, "doc is null (unanswerable) but answers or evidence are set",
                                     "set the doc the answer comes from, or make answers [] and evidence null"))
        return problems
    if not isinstance(doc, str) or not doc.strip():
        problems.append(_problem(where, f"doc must be a document id or null, got {doc!r}",
                                 "use the file name the index lists in `qa documents`"))
    if not isinstance(evidence, str) or not evidence.strip():
        problems.append(_problem(where, f"evidence must be a non-empty string for an answerable question, got {evidence!r}",
                                 "copy the sentence that holds the answer verbatim from the document"))
        return problems
    if not answers:
        problems.append(_problem(where, "an answerable question needs at least one answer",
                                 'add "answers": ["…"] with strings copied from the evidence'))
    for a in answers:
        if a not in evidence:
            problems.append(_problem(where, f"answer {a!r} is not inside the evidence",
                                     "copy the answer verbatim from the evidence, or widen the evidence"))
    return problems


def _item(obj: dict) -> GoldItem:
    return GoldItem(
        id=obj["id"].strip(),
        question=obj["question"],
        lang=obj["lang"],
        doc=obj["doc"],
        answers=tuple(obj["answers"]),
        evidence=obj["evidence"] or None,
        type=obj["type"].strip(),
    )


def parse_gold_line(text: str, where: str = "line 1") -> GoldItem:
    """One gold item from one JSON line; raises :class:`GoldError` naming ``where``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno})",
            [f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"],
            hint="write one JSON object per line",
        ) from exc
    if not isinstance(obj, dict):
        raise GoldError(f"{where}: expected a JSON object, got {type(obj).__name__}",
                        hint="write one JSON object per line")
    problems = _check_fields(obj, where)
    if problems:
        raise GoldError(problems[0], problems)
    return _item(obj)


def parse_gold(lines: Iterable[str], source: str = "gold") -> list[GoldItem]:
    """Parse every non-blank line; collect all problems before raising."""
    items: list[GoldItem] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            item = parse_gold_line(line, where)
        except GoldError as exc:
            problems.extend(exc.problems or [exc.message])
            continue
        if item.id in seen:
            problems.append(_problem(where, f"id {item.id!r} is already used on {seen[item.id]}",
                                     "give every item its own id"))
            continue
        seen[item.id] = f"line {number}"
        items.append(item)
    if not problems and not items:
        problems.append(f"{source}: no gold item; add one JSON object per line")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise GoldError(
            f"{len(problems)} problem(s) in {source}:\n  {shown}{more}", problems,
        )
    return items


def load_gold(path: Path | str) -> list[GoldItem]:
    """Read and validate a gold JSONL file.

    Raises :class:`GoldError` (an :class:`~qa.errors.InputError`) listing every
    problem, or :class:`~qa.errors.NotFoundError` when the file does not exist.
    """
    from qa.errors import NotFoundError

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"gold file {path} does not exist",
                            hint="pass --gold with a JSONL file, e.g. eval/gold.jsonl")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GoldError(f"{path} is not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from exc
    return parse_gold(text.splitlines(), source=str(path))


def check_against_documents(items: Iterable[GoldItem], texts: Mapping[str, str]) -> list[str]:
    """Problems of answerable items against document texts (doc_id → text).

    Evidence and answers must occur *verbatim* in the document: a gold string that
    only matches after folding hides a typo that folding happens to forgive.

    >>> item = parse_gold_line('{"id": "a", "question": "q", "lang": "zh", "doc": "d.txt", '
    ...     '"answers": ["10分钟"], "evidence": "打造10分钟急救圈", "type": "number"}')
    >>> check_against_documents([item], {"d.txt": "宜昌打造10分钟急救圈。"})
    []
    >>> check_against_documents([item], {"d.txt": "宜昌打造10分鐘急救圈。"})[0]
    "a: evidence '打造10分钟急救圈' is not in d.txt verbatim"
    """
    problems: list[str] = []
    for item in items:
        if not item.answerable:
            continue
        text = texts.get(item.doc)
        if text is None:
            problems.append(f"{item.id}: document {item.doc} is not in the corpus")
            continue
        if item.evidence not in text:
            problems.append(f"{item.id}: evidence {item.evidence!r} is not in {item.doc} verbatim")
        for a in item.answers:
            if a not in text:
                problems.append(f"{item.id}: answer {a!r} is not in {item.doc} verbatim")
    return problems
