"""The HTTP API through FastAPI's TestClient, over the tiny hash-embedder corpus."""

from __future__ import annotations

import json
import sys

import pytest
from apihelpers import sse_json
from conftest import API_KEY, make_client
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from qa.api import answer_pieces, create_app
from qa.cli import main as cli_main
from qa.settings import Settings
from qa.types import Filters, Turn


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


# ---------------------------------------------------------------- health


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "documents": 4}


def test_readyz_without_index_is_503_with_reason(tmp_path):
    settings = Settings(index_dir=tmp_path / "none", corpus_dir=tmp_path, embedder="hash")
    with TestClient(create_app(settings, mount_ui=False)) as client:
        assert client.get("/healthz").status_code == 200
        err = assert_error(client.get("/readyz"), 503, "no_index")
        assert "qa index" in err["message"]
        # every read maps NoIndexError to 503 through the one handler
        assert_error(client.post("/v1/retrieve", json={"query": "宜昌"}), 503, "no_index")
        assert_error(client.get("/v1/documents"), 503, "no_index")


# ---------------------------------------------------------------- retrieve


def test_retrieve_matches_cli_search_json(client, pipeline, capsys):
    query = "宜昌打造多少分钟急救圈?"
    response = client.post("/v1/retrieve", json={"query": query, "k": 3})
    assert response.status_code == 200
    body = response.json()
    code = cli_main(["search", "--json", query, "-k", "3", "--index-dir", str(pipeline.index_dir),
                     "--embedder", "hash"])
    assert code == 0
    assert body == json.loads(capsys.readouterr().out)
    assert len(body["hits"]) == 3 and body["hits"][0]["doc_id"] == "yichang.txt"
    for hit in body["hits"]:
        assert pipeline.document(hit["doc_id"]).text[hit["start"]:hit["end"]] == hit["text"]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_retrieve_modes_and_filters(client, pipeline, mode):
    body = client.post("/v1/retrieve", json={
        "query": "急救圈", "k": 10, "mode": mode, "filters": {"region": "武汉"}}).json()
    expected = pipeline.search("急救圈", k=10, mode=mode, filters=Filters(region="武汉"))
    assert body["hits"] == [h.to_json() for h in expected]
    assert body["hits"] and {h["doc_id"] for h in body["hits"]} == {"wuhan.txt"}
    only = client.post("/v1/retrieve", json={"query": "病例", "filters": {"doc_ids": ["hubei/xianning.txt"]}}).json()
    assert only["hits"] and {h["doc_id"] for h in only["hits"]} == {"hubei/xianning.txt"}
    dated = client.post("/v1/retrieve", json={"query": "急救", "k": 10, "filters": {"date_from": "2021-01-01"}}).json()
    assert dated["hits"] and {h["doc_id"] for h in dated["hits"]} <= {"yichang.txt", "ezhou.txt"}


@pytest.mark.parametrize("body,status,code", [
    ({"query": "宜昌", "k": 0}, 422, "invalid_request"),
    ({"query": "宜昌", "k": 101}, 422, "invalid_request"),
    ({"query": "宜昌", "k": "many"}, 422, "invalid_request"),
    ({"query": "宜昌", "k": 2.5}, 422, "invalid_request"),
    ({"query": 42}, 422, "invalid_request"),
    ({"k": 3}, 422, "invalid_request"),
    ({"query": "宜昌", "mode": "fuzzy"}, 422, "invalid_request"),
    ({"query": "宜昌", "colour": "red"}, 422, "invalid_request"),
    ({"query": "宜昌", "filters": {"date_from": "last week"}}, 422, "invalid_request"),
    ({"query": "宜昌", "filters": {"doc_ids": "yichang.txt"}}, 422, "invalid_request"),
    ({"query": "   "}, 400, "invalid_input"),
    ({"query": "问" * 2001}, 400, "invalid_input"),
])
def test_retrieve_rejects_bad_input(client, body, status, code):
    err = assert_error(client.post("/v1/retrieve", json=body), status, code)
    if status == 422:
        assert "body" not in err["message"].split(":")[0]  # locations are readable: "k: ..."


def test_question_limit_follows_settings(pipeline):
    with make_client(pipeline, max_question_chars=10) as client:
        err = assert_error(client.post("/v1/retrieve", json={"query": "宜昌" * 6}), 400, "invalid_input")
        assert "limit is 10" in err["message"]
        assert client.post("/v1/retrieve", json={"query": "宜昌急救圈"}).status_code == 200


def test_malformed_bodies_are_4xx(client):
    assert_error(client.post("/v1/retrieve", content=b"{not json", headers={"content-type": "application/json"}),
                 400, "invalid_json")
    assert_error(client.post("/v1/retrieve", json=["宜昌"]), 422, "invalid_request")
    assert_error(client.post("/v1/retrieve"), 422, "invalid_request")
    assert_error(client.post("/v1/ask", content="宜昌".encode(), headers={"content-type": "text/plain"}),
                 422, "invalid_request")


def test_unknown_routes_and_wrong_methods(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.post("/v1/documents/x/y/z"), 405, "method_not_allowed")
    err = assert_error(client.get("/v1/retrieve"), 405, "method_not_allowed")
    assert "GET" in err["message"]
    assert_error(client.put("/v1/documents/yichang.txt"), 405, "method_not_allowed")


# ---------------------------------------------------------------- documents


def test_list_and_get_documents(client, pipeline):
    docs = client.get("/v1/documents").json()["documents"]
    counts = pipeline.chunk_counts()
    assert [d["doc_id"] for d in docs] == sorted(counts)
    for d in docs:
        assert set(d) == {"doc_id", "title", "date", "region", "source", "chunks"}
        assert d["chunks"] == counts[d["doc_id"]] > 0
    wuhan = next(d for d in docs if d["doc_id"] == "wuhan.txt")
    assert wuhan["date"] == "2020-06-30" and wuhan["source"] == pipeline.document("wuhan.txt").source

    nested = client.get("/v1/documents/hubei/xianning.txt")  # the id contains a slash
    assert nested.status_code == 200
    body = nested.json()
    assert body["text"] == pipeline.document("hubei/xianning.txt").text and body["doc_id"] == "hubei/xianning.txt"
    assert_error(client.get("/v1/documents/hubei/nothing.txt"), 404, "not_found")
    assert_error(client.get("/v1/documents/../../etc/passwd"), 404, "not_found")


# ---------------------------------------------------------------- writes


def _upload(client, name: str, content: bytes, **headers):
    return client.post("/v1/documents", files={"file": (name, content, "text/plain")}, headers=headers)


NEW_DOC = "黄石市应急管理通报\n来源:东楚晚报 2022-05-06\n\n黄石建成森林消防驿站27个,覆盖全部乡镇。\n".encode()


def test_writes_refused_without_configuration(client, pipeline):
    err = assert_error(_upload(client, "huangshi.txt", NEW_DOC), 403, "forbidden")
    assert "--api-key" in err["message"] and "--allow-writes" in err["message"]
    assert_error(client.delete("/v1/documents/wuhan.txt"), 403, "forbidden")
    assert not (pipeline.corpus_dir() / "huangshi.txt").exists()
    assert "wuhan.txt" in {d.doc_id for d in pipeline.documents()}


def test_writes_need_the_right_key(writer, pipeline):
    assert_error(_upload(writer, "huangshi.txt", NEW_DOC), 401, "unauthorized")
    response = _upload(writer, "huangshi.txt", NEW_DOC, **{"X-API-Key": "wrong"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error(writer.delete("/v1/documents/wuhan.txt", headers={"Authorization": "Bearer wrong"}), 401)
    assert not (pipeline.corpus_dir() / "huangshi.txt").exists()

    created = _upload(writer, "huangshi.txt", NEW_DOC, **{"X-API-Key": API_KEY})
    assert created.status_code == 201, created.text
    assert created.json()["doc_id"] == "huangshi.txt" and created.json()["index"]["added"] == ["huangshi.txt"]
    ids = [d["doc_id"] for d in writer.get("/v1/documents").json()["documents"]]
    assert "huangshi.txt" in ids
    hits = writer.post("/v1/retrieve", json={"query": "黄石森林消防驿站", "k": 1}).json()["hits"]
    assert hits[0]["doc_id"] == "huangshi.txt"

    deleted = writer.delete("/v1/documents/hubei/xianning.txt", headers={"Authorization": f"Bearer {API_KEY}"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["index"]["deleted"] == ["hubei/xianning.txt"]
    assert_error(writer.get("/v1/documents/hubei/xianning.txt"), 404, "not_found")
    assert_error(writer.delete("/v1/documents/hubei/xianning.txt", headers={"X-API-Key": API_KEY}), 404, "not_found")


def test_allow_writes_without_key(pipeline):
    with make_client(pipeline, allow_writes=True) as client:
        assert _upload(client, "huangshi.txt", NEW_DOC).status_code == 201


def test_existing_names_are_only_replaced_on_request(pipeline):
    with make_client(pipeline, allow_writes=True) as client:
        before = client.get("/v1/documents/wuhan.txt").json()["text"]
        err = assert_error(_upload(client, "wuhan.txt", NEW_DOC), 409, "conflict")
        assert "replace=true" in err["message"]
        assert client.get("/v1/documents/wuhan.txt").json()["text"] == before
        replaced = client.post("/v1/documents?replace=true", files={"file": ("wuhan.txt", NEW_DOC)})
        assert replaced.status_code == 201 and replaced.json()["index"]["changed"] == ["wuhan.txt"]
        assert client.get("/v1/documents/wuhan.txt").json()["text"] == NEW_DOC.decode()


def test_upload_names_are_sanitised(pipeline, tmp_path):
    corpus = pipeline.corpus_dir()
    before = {p for p in tmp_path.rglob("*") if p.is_file() and "index" not in p.parts}
    with make_client(pipeline, allow_writes=True) as client:
        for name in ("../../escape.txt", "/etc/absolute.txt", "..\\..\\windows.txt"):
            response = _upload(client, name, NEW_DOC)
            assert response.status_code == 201, response.text
            stored = response.json()["doc_id"]
            assert "/" not in stored and "\\" not in stored and not stored.startswith(".")
            assert (corpus / stored).is_file()
    after = {p for p in tmp_path.rglob("*") if p.is_file() and "index" not in p.parts}
    new = after - before
    assert new and all(p.parent == corpus for p in new), new
    assert not list(tmp_path.parent.glob("escape.txt"))


@pytest.mark.parametrize("name,content,code", [
    ("virus.exe", b"MZ\x90\x00", "invalid_input"),
    ("noext", b"plain words", "invalid_input"),
    ("broken.pdf", b"%PDF-1.4 this is no pdf", "invalid_input"),
    ("..", b"text", "invalid_input"),
])
def test_upload_rejects_unusable_files(pipeline, name, content, code):
    with make_client(pipeline, allow_writes=True) as client:
        assert_error(_upload(client, name, content), 400, code)
    assert sorted(d.doc_id for d in pipeline.documents()) == sorted(pipeline.chunk_counts())


def test_upload_needs_a_multipart_file(pipeline):
    with make_client(pipeline, allow_writes=True) as client:
        assert_error(client.post("/v1/documents", json={"file": "x"}), 400, "invalid_input")
        assert_error(client.post("/v1/documents", data={"other": "x"}, files={"f": ("a.txt", b"x")}), 400)


def test_upload_size_limit_with_content_length(pipeline):
    with make_client(pipeline, allow_writes=True, max_upload_mb=0.01) as client:  # 10 KB
        big = ("宜昌" * 20_000).encode()
        err = assert_error(_upload(client, "big.txt", big), 413, "too_large")
        assert "MB" in err["message"]
        assert _upload(client, "small.txt", NEW_DOC).status_code == 201
    assert not (pipeline.corpus_dir() / "big.txt").exists()


def test_upload_size_limit_when_streamed_without_length(pipeline):
    """A chunked body has no Content-Length: it is counted and cut off at the cap."""
    boundary = "qa-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()

    def body():
        yield head
        for _ in range(100):
            yield ("宜昌" * 1000).encode()  # 6 KB each, 600 KB in all
        yield f"\r\n--{boundary}--\r\n".encode()

    with make_client(pipeline, allow_writes=True, max_upload_mb=0.1) as client:
        response = client.post("/v1/documents", content=body(),
                               headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert_error(response, 413, "too_large")
    assert not (pipeline.corpus_dir() / "big.txt").exists()


def test_json_bodies_are_capped(client):
    response = client.post("/v1/retrieve", content=b'{"query": "' + b"a" * (2 << 20) + b'"}',
                           headers={"content-type": "application/json"})
    assert_error(response, 413, "too_large")


def test_cannot_delete_the_last_document(tmp_path):
    corpus = tmp_path / "one"
    corpus.mkdir()
    (corpus / "only.txt").write_text("宜昌打造10分钟急救圈。", encoding="utf-8")
    from qa.embed import HashEmbedder
    from qa.pipeline import Pipeline

    pipeline = Pipeline(Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", embedder="hash"), HashEmbedder())
    pipeline.index(corpus)
    with make_client(pipeline, allow_writes=True) as client:
        assert_error(client.delete("/v1/documents/only.txt"), 409, "conflict")
    assert (corpus / "only.txt").exists()


# ---------------------------------------------------------------- ask


def test_ask_matches_cli_ask_json(client, pipeline, capsys):
    question = "宜昌打造多少分钟急救圈?"
    response = client.post("/v1/ask", json={"question": question, "k": 3})
    assert response.status_code == 200, response.text
    code = cli_main(["ask", "--json", question, "-k", "3", "--index-dir", str(pipeline.index_dir),
                     "--embedder", "hash"])
    assert code == 0
    assert response.json() == json.loads(capsys.readouterr().out)
    assert set(response.json()) >= {"question", "answer", "refused", "citations", "hits"}


def test_ask_with_history_and_filters(client, pipeline):
    history = [{"role": "user", "content": "宜昌打造多少分钟急救圈?"},
               {"role": "assistant", "content": "宜昌中心城区10分钟。"}]
    body = client.post("/v1/ask", json={"question": "武汉呢?", "history": history, "k": 4,
                                        "filters": {"region": "武汉"}}).json()
    expected = pipeline.ask("武汉呢?", history=[Turn(**t) for t in history], k=4, filters=Filters(region="武汉"))
    assert body == expected.to_json()
    assert all(h["doc_id"] == "wuhan.txt" for h in body["hits"])


def test_ask_stream_sends_pieces_then_final_then_done(client, pipeline):
    question = "鄂州建成了多少个红色网格驿站?"
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_json(response.read().decode())
    names = [e for e, _ in events]
    assert names[-2:] == ["final", "done"] and set(names[:-2]) <= {"delta"}
    final = events[-2][1]
    assert final == pipeline.ask(question).to_json()
    assert "".join(d["text"] for e, d in events if e == "delta") == final["answer"]


@pytest.mark.parametrize("body,status", [
    ({"question": ""}, 400),
    ({"question": "宜昌?", "history": [{"role": "robot", "content": "x"}]}, 422),
    ({"question": "宜昌?", "history": "none"}, 422),
    ({"question": "宜昌?", "k": 1000}, 422),
    ({"question": "宜昌?", "stream": "sometimes"}, 422),
])
def test_ask_rejects_bad_input(client, body, status):
    assert_error(client.post("/v1/ask", json=body), status)


# ---------------------------------------------------------------- OpenAI-compatible


def test_chat_completion_is_openai_shaped(client, pipeline):
    messages = [
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": "宜昌打造多少分钟急救圈?"},
        {"role": "assistant", "content": [{"type": "text", "text": "中心城区10分钟。"}]},
        {"role": "user", "content": [{"type": "text", "text": "武汉呢?"}]},
    ]
    response = client.post("/v1/chat/completions", json={
        "model": "anything", "messages": messages, "temperature": 0.2, "top_p": 1, "max_tokens": 50,
        "presence_penalty": 0, "user": "portal", "n": 1, "seed": 7, "stream_options": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "anything" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    expected = pipeline.ask("武汉呢?", history=[Turn("user", "宜昌打造多少分钟急救圈?"), Turn("assistant", "中心城区10分钟。")])
    assert choice["message"]["content"] == expected.answer
    assert choice["message"]["citations"] == [c.to_json() for c in expected.citations]
    assert choice["message"]["refused"] == expected.refused


def test_chat_completion_stream_chunks_end_with_done(client, pipeline):
    question = "鄂州建成了多少个红色网格驿站?"
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": question}], "stream": True}) as response:
        assert response.status_code == 200
        events = sse_json(response.read().decode())
    assert events[-1] == (None, "[DONE]")
    chunks = [d for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    expected = pipeline.ask(question)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == expected.answer
    assert chunks[-1]["choices"][0]["delta"]["citations"] == [c.to_json() for c in expected.citations]


def test_chat_completion_errors(client):
    assert_error(client.post("/v1/chat/completions", json={"messages": []}), 422)
    assert_error(client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]}),
                 400, "invalid_input")
    assert_error(client.post("/v1/chat/completions", json={"messages": [{"role": "wizard", "content": "x"}]}), 422)
    assert_error(client.post("/v1/chat/completions", json={"model": "m"}), 422)
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "qa-gov"


# ---------------------------------------------------------------- docs, CORS, UI, 500s


def test_openapi_documents_every_route_with_examples(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/v1/retrieve", "post"), ("/v1/ask", "post"), ("/v1/chat/completions", "post"),
                         ("/v1/documents", "get"), ("/v1/documents", "post"), ("/v1/documents/{doc_id}", "get"),
                         ("/v1/documents/{doc_id}", "delete"), ("/healthz", "get"), ("/readyz", "get")]:
        assert method in paths[path], (path, method)
    schemas = spec["components"]["schemas"]
    for name in ("RetrieveRequest", "AskRequest", "ChatRequest"):
        assert schemas[name]["examples"], name
    assert "multipart/form-data" in paths["/v1/documents"]["post"]["requestBody"]["content"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_cors_origins_are_configurable(pipeline):
    preflight = {"Origin": "https://portal.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    with make_client(pipeline, cors_origins="https://portal.example, https://bot.example") as client:
        ok = client.options("/v1/retrieve", headers=preflight)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://portal.example"
        bad = client.options("/v1/retrieve", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers
        simple = client.post("/v1/retrieve", json={"query": "宜昌"}, headers={"Origin": "https://bot.example"})
        assert simple.headers["access-control-allow-origin"] == "https://bot.example"
    with make_client(pipeline, cors_origins="*") as client:
        assert client.options("/v1/retrieve", headers=preflight).headers["access-control-allow-origin"] == "*"
    with make_client(pipeline) as client:  # none configured: no CORS headers at all
        assert "access-control-allow-origin" not in client.post(
            "/v1/retrieve", json={"query": "宜昌"}, headers={"Origin": "https://portal.example"}).headers


def test_home_page_links_to_docs_without_ui(pipeline, monkeypatch):
    monkeypatch.setitem(sys.modules, "qa.ui.app", None)  # make the UI module unimportable
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        home = client.get("/")
        assert home.status_code == 200 and "/docs" in home.text
        assert_error(client.get("/v1/nope"), 404, "not_found")


def test_unexpected_errors_are_500_without_traceback(pipeline, monkeypatch, caplog):
    """The catch-all handler, triggered on purpose: a shaped 500, the traceback only in the log."""
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "search", broken)
    app = create_app(pipeline.settings, pipeline, mount_ui=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        err = assert_error(client.post("/v1/retrieve", json={"query": "宜昌"}), 500, "internal_error")
        assert "disk on fire" not in err["message"]
    assert "disk on fire" in caplog.text


# ---------------------------------------------------------------- pure helpers


@given(st.text(alphabet=st.sampled_from(list("宜昌。！？!?.;；[]0123 \nab")), max_size=80))
def test_answer_pieces_join_back(text):
    pieces = answer_pieces(text)
    assert "".join(pieces) == text and all(pieces)


def test_answer_pieces_keep_markers_with_their_sentence():
    assert answer_pieces("武汉为12分钟[2]。鄂州为15分钟。[3][4]") == ["武汉为12分钟[2]。", "鄂州为15分钟。[3][4]"]
    assert answer_pieces("It is 3.5 km. Next [1].") == ["It is 3.5 km. ", "Next [1]."]
