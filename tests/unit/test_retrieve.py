"""Retriever behaviour on the tiny three-city corpus with the hash embedder."""

import threading

import pytest

from qa.errors import InputError
from qa.types import Filters


def test_city_decides_in_every_mode(fake_pipeline):
    for mode in ("dense", "bm25", "hybrid"):
        hits = fake_pipeline.search("宜昌急救圈", k=1, mode=mode)
        assert hits[0].doc_id == "yichang.txt", mode


def test_hit_shape_and_offsets(fake_pipeline):
    hit = fake_pipeline.search("红色网格驿站", k=3)[0]
    data = hit.to_json()
    assert list(data) == ["doc_id", "title", "text", "start", "end", "score"]
    doc = fake_pipeline.document(hit.doc_id)
    assert doc.text[data["start"]:data["end"]] == data["text"]


def test_traditional_query_matches_simplified_text(fake_pipeline):
    assert fake_pipeline.search("紅色網格驛站", k=1, mode="bm25")[0].doc_id == "ezhou.txt"


def test_filters(fake_pipeline):
    hits = fake_pipeline.search("急救圈", k=5, filters=Filters(doc_ids=("wuhan.txt",)))
    assert hits and {h.doc_id for h in hits} == {"wuhan.txt"}
    hits = fake_pipeline.search("急救圈", k=5, filters=Filters(date_from="2021-01-01", date_to="2021-12-31"))
    assert {h.doc_id for h in hits} == {"ezhou.txt"}
    assert fake_pipeline.search("急救圈", filters=Filters(date_from="2030-01-01")) == []


def test_bm25_weight_follows_what_it_can_read(fake_pipeline):
    retriever = fake_pipeline.retriever()
    assert retriever.plan("宜昌急救圈").lexical_weight == 1.0
    # no Chinese and nothing a dictionary knows: BM25 gets no say at all
    assert retriever.plan("xyzzy plugh?").lexical_weight == 0.0
    # translated English terms count, but less than Chinese the user typed
    plan = retriever.plan("What emergency-care radius did Yichang set?")
    assert "急救" in plan.tokens and "宜昌" in plan.tokens
    assert 0.0 < plan.lexical_weight <= 0.5
    # the retriever keeps only senses its corpus uses: words whose senses never occur
    # give BM25 nothing to read (the dictionary alone would give 天气 and 火星)
    plan = retriever.plan("What is the weather like on Mars?")
    assert "天气" not in plan.tokens and "火星" not in plan.tokens
    assert plan.lexical_weight == 0.0
    from qa.retrieve import query_plan

    assert "火星" in query_plan("What is the weather like on Mars?").tokens


@pytest.mark.parametrize("query,k,mode,match", [
    ("", 5, "hybrid", "empty"),
    ("   ", 5, "hybrid", "empty"),
    ("宜昌", 0, "hybrid", "at least 1"),
    ("宜昌", 5, "fuzzy", "unknown mode"),
    ("问" * 2001, 5, "hybrid", "2001 characters"),
])
def test_bad_input(fake_pipeline, query, k, mode, match):
    with pytest.raises(InputError, match=match):
        fake_pipeline.search(query, k=k, mode=mode)


def test_rrf_fusion_is_selectable_and_unknown_fusion_is_refused(fake_pipeline):
    from qa.errors import ConfigError
    from qa.retrieve import Retriever

    snapshot = fake_pipeline.retriever().snapshot
    rrf = Retriever(snapshot, fake_pipeline.embedder, fusion="rrf")
    with fake_pipeline.store.reading():
        assert rrf.search("宜昌急救圈", k=1)[0].doc_id == "yichang.txt"
    with pytest.raises(ConfigError, match="score, rrf"):
        Retriever(snapshot, fake_pipeline.embedder, fusion="borda")


def test_a_large_index_dense_side_on_a_helper_thread_ranks_as_in_line(tmp_path, monkeypatch):
    """The helper-thread path (taken by large indexes) gives the same hits, scores
    included, as computing everything on the caller's thread."""
    from qa.index.local.store import LocalSnapshot
    from qa.pipeline import Pipeline
    from qa.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, city in enumerate(["宜昌", "鄂州", "武汉", "咸宁"]):
        (corpus / f"{i}.txt").write_text(f"{city}市政府文件\n{city}打造{10 + i}分钟急救圈。网格化管理全覆盖。\n"
                                         f"{city}新建驿站{i + 3}个。\n", encoding="utf-8")
    p = Pipeline(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedder="hash"))
    p.index(corpus)
    questions = ["宜昌急救圈多少分钟", "网格化管理", "武汉驿站", "What emergency-care radius did Yichang set?"]

    def hits():
        return [[(h.doc_id, h.start, round(h.score, 6), h.dense_score, h.bm25_score) for h in p.search(q, k=3)]
                for q in questions]

    monkeypatch.setattr(LocalSnapshot, "nearest_off_thread", lambda self: False)
    in_line = hits()
    calls = []
    real = LocalSnapshot.nearest

    def counted(self, *a, **kw):
        calls.append(threading.current_thread().name)
        return real(self, *a, **kw)

    monkeypatch.setattr(LocalSnapshot, "nearest_off_thread", lambda self: True)
    monkeypatch.setattr(LocalSnapshot, "nearest", counted)
    assert hits() == in_line
    assert calls and all(name.startswith("qa-dense") for name in calls)
