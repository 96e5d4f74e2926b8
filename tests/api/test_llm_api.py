"""The HTTP API with an LLM configured (scripted server on a loopback port): JSON,
SSE and chat-completions streaming carry verified sentences only, and a failing LLM
never turns into a 5xx."""

from __future__ import annotations

import json

import pytest
from apihelpers import sse_json
from conftest import make_client
from scripted_llm import Reply, ScriptedLLM, passage_number

from qa.eval.processes import free_port
from qa.pipeline import Pipeline



@pytest.fixture(autouse=True)
def _answer_what_the_rules_allow(monkeypatch):
    # The refusal model is fitted on the real model's similarities; the hash embedder's
    # are not on that scale. Every pipeline here (the LLM one and the extractive one it
    # is compared with) takes every answer the hard rules allow: threshold 0.
    monkeypatch.setenv("QA_REFUSAL_THRESHOLD", "0")

def llm_client(pipeline: Pipeline, **llm):
    """A started app whose pipeline (same index) has the LLM settings ``llm``."""
    # The refusal model is fitted on the real model's similarities; the hash embedder's are
    # not on that scale, so these tests take every answer the hard rules allow (threshold 0).
    settings = pipeline.settings.model_copy(update={"refusal_threshold": 0.0, **llm})
    return make_client(Pipeline(settings, embedder=pipeline.embedder))

QUESTION = "宜昌打造多少分钟急救圈?"
KEY = "sk-llm-key-never-returned"


def answer_script(body: dict) -> Reply:
    n = passage_number(body, "10分钟")
    return Reply(f"宜昌打造中心城区“10分钟”急救圈[{n}]。县市为“30分钟”急救圈[{n}]。宜昌还新建了88个急救站[{n}]。")


def test_ask_json_reports_the_generator_and_dropped_sentences(pipeline):
    with ScriptedLLM(answer_script) as llm, llm_client(pipeline, llm_url=llm.url, llm_model="scripted",
                                                         llm_api_key=KEY) as client:
        r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert body["generator"] == "llm:scripted"
    assert body["answer"] == "宜昌打造中心城区“10分钟”急救圈[1]。县市为“30分钟”急救圈[1]。"
    assert body["dropped"] == [{"text": f"宜昌还新建了88个急救站[{passage_number(llm.requests[0], '10分钟')}]。",
                                "reason": "figure 88 not in the cited passages"}]
    (cite,) = body["citations"]
    assert "10分钟" in cite["quote"] and "30分钟" in cite["quote"]
    assert pipeline.document(cite["doc_id"]).text[cite["start"]:cite["end"]] == cite["quote"]
    assert KEY not in r.text


def test_ask_sse_streams_verified_sentences_then_the_final_answer(pipeline):
    with ScriptedLLM(answer_script) as llm, llm_client(pipeline, llm_url=llm.url, llm_model="scripted") as client:
        r = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_json(r.text)
    kinds = [e for e, _ in events]
    assert kinds == ["delta", "delta", "final", "done"]
    deltas = [d["text"] for e, d in events if e == "delta"]
    final = events[2][1]
    assert "".join(deltas) == final["answer"] and final["generator"] == "llm:scripted"
    assert all("88" not in d for d in deltas)


def test_chat_completions_stream_and_whole(pipeline):
    messages = [{"role": "user", "content": QUESTION}]
    with ScriptedLLM(answer_script) as llm, llm_client(pipeline, llm_url=llm.url, llm_model="scripted") as client:
        streamed = client.post("/v1/chat/completions", json={"model": "qa-gov", "stream": True, "messages": messages})
        whole = client.post("/v1/chat/completions", json={"model": "qa-gov", "messages": messages})
    chunks = [d for _, d in sse_json(streamed.text)]
    assert chunks[-1] == "[DONE]"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    last = chunks[-2]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"]["generator"] == "llm:scripted"
    assert content == "宜昌打造中心城区“10分钟”急救圈[1]。县市为“30分钟”急救圈[1]。"
    message = whole.json()["choices"][0]["message"]
    assert message["content"] == content and message["generator"] == "llm:scripted"
    assert message["dropped"][0]["reason"] == "figure 88 not in the cited passages"


@pytest.mark.parametrize("failure", ["unreachable", "rate-limited", "garbage", "slow"])
def test_a_failing_llm_never_gives_5xx(pipeline, failure, caplog):
    replies = {"rate-limited": Reply(status=429), "garbage": Reply(raw=b"{]"), "slow": Reply("x", delay_s=3)}
    with ScriptedLLM(lambda _b: replies.get(failure, Reply())) as llm:
        url = f"http://127.0.0.1:{free_port()}/v1" if failure == "unreachable" else llm.url
        with llm_client(pipeline, llm_url=url, llm_model="m", llm_timeout=0.5, llm_api_key=KEY) as client:
            plain = client.post("/v1/ask", json={"question": QUESTION})
            sse = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
            chat = client.post("/v1/chat/completions", json={"stream": True,
                                                             "messages": [{"role": "user", "content": QUESTION}]})
    extractive = pipeline.ask(QUESTION)
    assert plain.status_code == sse.status_code == chat.status_code == 200
    assert plain.json()["generator"] == "extractive" and plain.json()["answer"] == extractive.answer
    final = [d for e, d in sse_json(sse.text) if e == "final"][0]
    assert final["generator"] == "extractive" and final["answer"] == extractive.answer
    assert json.loads(chat.text.split("data: ")[-2])["choices"][0]["delta"]["generator"] == "extractive"
    assert KEY not in plain.text + sse.text + chat.text + caplog.text


def test_bad_question_is_still_a_400_with_an_llm(pipeline):
    with llm_client(pipeline, llm_url=f"http://127.0.0.1:{free_port()}/v1") as client:
        r = client.post("/v1/ask", json={"question": "  ", "stream": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
