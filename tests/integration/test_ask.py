"""``ask`` with the real bundled model: the three-city slice, the CLI, and every gold
question against a full-corpus index.

The full-corpus index is built once per session (~2.5 min on two cores); set
``QA_TEST_FULL_INDEX`` to the folder of an existing full index built with the
default settings to reuse it instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.answer import format_answer_text
from qa.eval.gold import load_gold
from qa.fold import fold_compact
from qa.pipeline import Pipeline
from qa.settings import Settings
from qa.types import Turn

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
GOLD_SETS = {name: REPO / "eval" / f"{name}.jsonl"
             for name in ("gold", "tune", "test", "test2", "test3", "test4", "test5", "test6", "test7", "test8",
                          "test9", "test10")}
GOLD_SETS["dev"] = REPO.parent / "shared" / "eval" / "dev.jsonl"  # the team's shared dev set, beside the repo
# Regression floors just under what the README publishes (docs/reports/round21/): one
# answer fewer, one refusal more or one unanswerable fewer refused than the published
# run still passes; two fail. (least share of answerable questions answered with a gold
# string, most share of them refused, least share of unanswerables refused.) Published
# (issue 13, after the eighth round; test10 was its held-out part, scored once on the
# eighth round's code, and is a tuning set since, like test4 … test9), contained /
# answerable refused / unanswerable refused:
# gold 92/94, 1/94, 15/16; tune 22/26, 0/26, 21/22; test 23/24, 0/24, 19/20; test2 27/29, 0/29, 13/18;
# test3 43/47, 1/47, 24/33; test4 49/57, 3/57, 27/35; test5 33/38, 1/38, 21/32; test6 35/38, 0/38, 27/32;
# test7 39/56, 5/56, 26/32; test8 47/56, 1/56, 26/34; test9 33/46, 3/46, 22/27; test10 38/49, 5/49, 20/32;
# dev 27/27, 0/27, 3/3.
FLOORS = {"gold": (0.967, 0.023, 0.874), "tune": (0.806, 0.04, 0.908), "test": (0.915, 0.043, 0.899),
          "test2": (0.895, 0.036, 0.665), "test3": (0.892, 0.044, 0.695), "test4": (0.841, 0.072, 0.741),
          "test5": (0.841, 0.054, 0.624), "test6": (0.893, 0.028, 0.811), "test7": (0.677, 0.109, 0.78),
          "test8": (0.82, 0.037, 0.734), "test9": (0.694, 0.088, 0.776), "test10": (0.754, 0.124, 0.592),
          "dev": (0.961, 0.039, 0.665)}
YICHANG_RADIUS = "打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈"
YICHANG, EZHOU, WUHAN = "002_c1eac3b41c0a86c0.txt", "001_fe9e4e9dd9fdf586.txt", "003_9996ae020915016f.txt"


def _round_trips(pipeline: Pipeline, answer) -> None:
    for cite in answer.citations:
        assert pipeline.document(cite.doc_id).text[cite.start:cite.end] == cite.quote


# ---------------------------------------------------------------- three-city slice


@pytest.mark.parametrize("question", ["What emergency-care radius did Yichang set?", "宜昌打造多少分钟急救圈?"])
def test_yichang_radius_is_quoted_from_the_yichang_article(real_pipeline, question):
    answer = real_pipeline.ask(question)
    assert not answer.refused
    assert {c.doc_id for c in answer.citations} == {YICHANG}  # not Wuhan's or Ezhou's circles
    assert any(YICHANG_RADIUS in c.quote for c in answer.citations)
    assert YICHANG_RADIUS in answer.answer
    _round_trips(real_pipeline, answer)
    if answer.lang == "en":
        assert answer.answer.startswith("According to ") and "(Yichang, 2022-01-14)" in answer.answer
    else:
        assert answer.answer.startswith("根据《") and "(2022-01-14,宜昌市)" in answer.answer


@pytest.mark.parametrize("followup,doc,expected", [
    ("那武汉呢?", WUHAN, "中心城区10分钟、新城区12分钟医疗急救圈"),
    ("and Wuhan?", WUHAN, "中心城区10分钟、新城区12分钟医疗急救圈"),
])
def test_followup_moves_to_the_new_city(real_pipeline, followup, doc, expected):
    history = [Turn("user", "What emergency-care radius did Yichang set?"), Turn("assistant", "According to …")]
    answer = real_pipeline.ask(followup, history=history)
    assert not answer.refused
    assert answer.citations[0].doc_id == doc
    assert expected in answer.answer
    assert answer.retrieval_query != followup and "emergency-care radius" in answer.retrieval_query
    _round_trips(real_pipeline, answer)


def test_followup_to_a_city_that_set_no_such_target_is_a_near_miss(real_pipeline):
    """Ezhou's report describes its first-aid stations but gives no radius in minutes
    or kilometres (the gold set labels the same question for Xianning unanswerable):
    the answer refuses and says what the documents do give."""
    history = [Turn("user", "What emergency-care radius did Yichang set?"), Turn("assistant", "According to …")]
    answer = real_pipeline.ask("what about Ezhou?", history=history)
    assert answer.refused and answer.citations == ()
    assert answer.answer.startswith("Not found in the documents. The documents do not state the asked fact")
    assert "急救站" in answer.answer and answer.hits[0].doc_id == EZHOU
    assert "emergency-care radius" in answer.retrieval_query  # the follow-up was resolved


@pytest.mark.parametrize("question,message", [
    ("What is the population of Mars?", "Not found in the documents."),
    ("黄石市打造的医疗急救圈是多少分钟?", "未在文档中找到相关内容。"),  # a city with no document
    ("长沙地铁有几条线路?", "未在文档中找到相关内容。"),
])
def test_out_of_corpus_questions_are_refused(real_pipeline, question, message):
    answer = real_pipeline.ask(question)
    assert answer.refused and answer.answer == message and answer.citations == ()
    assert answer.hits  # "see also"
    assert "另见" in format_answer_text(answer) or "See also" in format_answer_text(answer)


def _qa(args: list[str], settings: Settings, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS_DIR": str(settings.corpus_dir)}
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_ask_json_lines(real_settings, real_pipeline):
    lines = [
        "What emergency-care radius did Yichang set?",
        json.dumps({"question": "那武汉呢?", "history": [
            {"role": "user", "content": "What emergency-care radius did Yichang set?"},
            {"role": "assistant", "content": "According to …"}]}, ensure_ascii=False),
        json.dumps({"question": "   "}),
    ]
    result = _qa(["ask", "--json", "-"], real_settings, "\n".join(lines) + "\n")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1, result.stderr  # one line failed
    assert len(out) == 3
    first, second, bad = out
    assert list(first) == ["question", "answer", "refused", "citations", "hits", "generator", "dropped"]
    assert first["generator"] == "extractive" and first["dropped"] == []  # no --llm-url: as before
    assert first["refused"] is False and first["citations"][0]["doc_id"] == YICHANG
    assert list(first["citations"][0]) == ["n", "doc_id", "title", "start", "end", "quote"]
    assert second["citations"][0]["doc_id"] == WUHAN
    for obj in (first, second):
        for c in obj["citations"]:
            assert real_pipeline.document(c["doc_id"]).text[c["start"]:c["end"]] == c["quote"]
        assert obj["hits"] and set(obj["hits"][0]) == {"doc_id", "title", "text", "start", "end", "score"}
    assert bad["error"]["code"] == "invalid_input"


def test_cli_ask_text(real_settings):
    result = _qa(["ask", "宜昌打造多少分钟急救圈?"], real_settings)
    assert result.returncode == 0, result.stderr
    assert YICHANG_RADIUS in result.stdout and "来源:" in result.stdout and "[1]" in result.stdout
    empty = _qa(["ask", " "], real_settings)
    assert empty.returncode == 2 and "error: the question is empty" in empty.stderr


# ---------------------------------------------------------------- every gold question, full corpus


# full_pipeline: the session fixture of tests/conftest.py (one full build per run,
# or QA_TEST_FULL_INDEX).


@pytest.mark.parametrize("name", sorted(GOLD_SETS))
def test_every_gold_answer_cites_exactly(full_pipeline, name):
    path = GOLD_SETS[name]
    if not path.exists():
        pytest.skip(f"{path} is not available on this machine")
    items = load_gold(path)
    contained, false_refusals, refused_unanswerable = 0, 0, 0
    answerable = [i for i in items if i.answerable]
    for item in items:
        answer = full_pipeline.ask(item.question)
        if answer.refused:
            assert answer.citations == () and answer.hits
        else:
            assert answer.citations, item.id
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        for cite in answer.citations:
            doc = full_pipeline.document(cite.doc_id)
            assert doc.text[cite.start:cite.end] == cite.quote, item.id
            assert f"[{cite.n}]" in answer.answer
        if not item.answerable:
            refused_unanswerable += answer.refused
        if item.answerable:
            false_refusals += answer.refused
            folded = fold_compact(answer.answer)
            contained += (not answer.refused) and any(fold_compact(a) in folded for a in item.answers)
    min_contained, max_refused, min_refused_unanswerable = FLOORS[name]
    assert contained >= min_contained * len(answerable), f"{name}: {contained}/{len(answerable)} contain a gold answer"
    assert false_refusals <= max_refused * len(answerable), f"{name}: {false_refusals} answerable questions refused"
    unanswerable = len(items) - len(answerable)
    assert refused_unanswerable >= min_refused_unanswerable * unanswerable, \
        f"{name}: {refused_unanswerable}/{unanswerable} unanswerable questions refused"
