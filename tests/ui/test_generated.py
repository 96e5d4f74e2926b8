"""The chat UI with an LLM configured (scripted server): the bubble grows one verified
sentence at a time and the last update names the generator and marks dropped claims."""

from __future__ import annotations

import pytest

from scripted_llm import Reply, ScriptedLLM, passage_number

from qa.eval.processes import free_port
from qa.pipeline import Pipeline
from qa.ui.app import _Handlers


@pytest.fixture(autouse=True)
def _answer_what_the_rules_allow(monkeypatch):
    # The refusal model is fitted on the real model's similarities; the hash embedder's
    # are not on that scale. Every pipeline here (the LLM one and the extractive one it
    # is compared with) takes every answer the hard rules allow: threshold 0.
    monkeypatch.setenv("QA_REFUSAL_THRESHOLD", "0")

QUESTION = "宜昌打造多少分钟急救圈?"


def _handlers(pipeline: Pipeline, url: str) -> _Handlers:
    # The refusal model is fitted on the real model's similarities; the hash embedder's are
    # not on that scale, so these tests take every answer the hard rules allow (threshold 0).
    settings = pipeline.settings.model_copy(update={"llm_url": url, "llm_model": "scripted",
                                                    "refusal_threshold": 0.0})
    return _Handlers(Pipeline(settings, embedder=pipeline.embedder), settings)


def _run(h: _Handlers, question: str):
    return list(h.respond(question, [], [], "", "", "", []))


def test_bubble_grows_per_verified_sentence_and_names_the_generator(fake_pipeline):
    def script(body: dict) -> Reply:
        n = passage_number(body, "10分钟")
        return Reply(f"宜昌打造中心城区“10分钟”急救圈[{n}]。县市为“30分钟”急救圈[{n}]。另有77辆救护车[{n}]。")

    with ScriptedLLM(script) as llm:
        steps = _run(_handlers(fake_pipeline, llm.url), QUESTION)
    bubbles = [chat[-1]["content"] for chat, *_ in steps]
    # placeholder, sentence 1, sentences 1-2, then the final bubble with badge and sources
    assert "10分钟" in bubbles[1] and "30分钟" not in bubbles[1]
    assert "30分钟" in bubbles[2]
    final_chat, _, sources, exchanges = steps[-1]
    final = final_chat[-1]["content"]
    assert "77" not in final and "written by llm:scripted" in final
    assert 'class="qa-dropped"' in final and "1 unsupported sentence removed" in final
    assert exchanges[-1]["generator"] == "llm:scripted"
    assert "10分钟" in sources


def test_fallback_is_marked_as_quoted(fake_pipeline):
    steps = _run(_handlers(fake_pipeline, f"http://127.0.0.1:{free_port()}/v1"), QUESTION)
    final = steps[-1][0][-1]["content"]
    assert "quoted from the documents" in final and "qa-dropped" not in final
    assert steps[-1][3][-1]["generator"] == "extractive"
