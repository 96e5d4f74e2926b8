"""POST /v1/retrieve on a small index: the query is embedded on a worker thread and
ranked on the event loop; on a large one (or before the index is loaded) all of it
runs on a worker thread. Both give the same answer."""

import threading

import pytest

import qa.index.local.store as store_module

from conftest import make_client


def _record(pipeline, monkeypatch):
    calls = []
    query_vector, search = pipeline.query_vector, pipeline.search

    def recording_query_vector(query):
        calls.append(("embed", threading.get_ident()))
        return query_vector(query)

    def recording_search(*args, **kwargs):
        calls.append(("search", threading.get_ident(), kwargs.get("query_vector") is not None))
        return search(*args, **kwargs)

    monkeypatch.setattr(pipeline, "query_vector", recording_query_vector)
    monkeypatch.setattr(pipeline, "search", recording_search)
    return calls


BODIES = [
    {"query": "宜昌急救圈", "k": 3},
    {"query": "红色网格驿站", "mode": "dense"},
    {"query": "How many minutes for emergency care in Wuhan?", "k": 2, "filters": {"region": "武汉"}},
    {"query": "急救", "k": 10, "mode": "bm25", "filters": {"date_from": "2021-01-01"}},
]


@pytest.mark.parametrize("body", BODIES)
def test_small_index_ranks_on_the_loop_with_the_same_result(client, pipeline, monkeypatch, body):
    calls = _record(pipeline, monkeypatch)
    light = client.post("/v1/retrieve", json=body)
    assert light.status_code == 200 and light.json()["hits"]
    if body.get("mode") == "bm25":  # nothing to embed: no thread at all
        assert [c[0] for c in calls] == ["search"] and calls[0][2] is False
    else:
        (_, embed_thread), (_, rank_thread, had_vector) = calls
        assert had_vector and embed_thread != rank_thread

    calls.clear()
    monkeypatch.setattr(store_module, "LIGHT_MAX_VECTORS", 0)  # every index is "large" now
    heavy = client.post("/v1/retrieve", json=body)
    assert [(c[0], c[2]) for c in calls] == [("search", False)]  # embedded inside, on a thread
    assert heavy.json() == light.json()


def test_an_error_raised_while_embedding_on_the_thread_is_reported_as_before(pipeline):
    # The server accepts longer questions than the retriever: the retriever's own
    # check fires inside query_vector, on the worker thread.
    with make_client(pipeline, max_question_chars=3000) as client:
        response = client.post("/v1/retrieve", json={"query": "问" * 2500})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input" and "2500 characters" in response.json()["error"]["message"]
