"""The cheap query path: array fusion, the CURRENT pointer check, vectors shared with
the FAISS store, and searching with a query vector computed beforehand."""

import numpy as np
import pytest

from qa.fusion import score_fusion, score_fusion_arrays, top_k, top_k_arrays
from qa.pipeline import Pipeline
from qa.retrieve import query_plan
from qa.types import Filters

# ---------------------------------------------------------------- fusion on arrays


def test_score_fusion_arrays_by_hand():
    # dense 0.9/0.8/0.7 → 1, 0.5, 0 between min and max; bm25 8 and 2 (item 1 silent)
    # → 1.0 and 0.25 of the best, times weight 0.5
    fused = score_fusion_arrays(np.array([0.9, 0.8, 0.7]), np.array([0.0, 2.0, 8.0]), 0.5)
    assert fused.tolist() == pytest.approx([1.0, 0.5 + 0.125, 0.0 + 0.5])


def test_score_fusion_arrays_flat_and_empty_inputs():
    # all dense scores equal: span 1, everything 0; no BM25 at all: nothing added
    assert score_fusion_arrays(np.array([0.3, 0.3]), np.zeros(2), 1.0).tolist() == [0.0, 0.0]
    assert score_fusion_arrays(np.zeros(0), np.zeros(0), 1.0).tolist() == []
    assert score_fusion_arrays(np.array([0.2, 0.4]), np.array([5.0, 0.0]), 0.0).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_score_fusion_arrays_equals_the_dict_version_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n = 200
    dense = rng.random(n).astype(np.float32).astype(np.float64)
    lexical = np.where(rng.random(n) < 0.3, rng.random(n) * 20, 0.0).astype(np.float32).astype(np.float64)
    weight = float(rng.random())
    arrays = score_fusion_arrays(dense, lexical, weight)
    dicts = score_fusion(dict(enumerate(dense.tolist())),
                         {i: v for i, v in enumerate(lexical.tolist()) if v > 0}, weight)
    assert arrays.tolist() == [dicts[i] for i in range(n)]  # ==, not approx


def test_top_k_arrays_breaks_ties_like_top_k():
    items = np.array([9, 2, 5, 7])
    scores = np.array([1.0, 3.0, 1.0, 3.0])
    picked = top_k_arrays(items, scores, 3)
    assert [(int(items[i]), float(scores[i])) for i in picked] == top_k(dict(zip(items.tolist(), scores.tolist())), 3)
    assert [int(items[i]) for i in picked] == [2, 7, 5]
    assert top_k_arrays(np.zeros(0, np.int64), np.zeros(0), 5).tolist() == []


# ---------------------------------------------------------------- snapshots


def test_a_request_reuses_the_snapshot_until_a_write_commits(fake_pipeline, tiny_corpus):
    fake_pipeline.search("宜昌急救圈", k=1)
    first = fake_pipeline._live
    fake_pipeline.search("武汉急救圈", k=1)
    assert fake_pipeline._live is first  # nothing changed: nothing rebuilt
    old_segments = {s.seg: s for s in first.snapshot.segments}
    fake_pipeline.add_document("huangshi.txt", "黄石市森林消防驿站建成投用。\n".encode())
    assert fake_pipeline.search("黄石森林消防驿站", k=1)[0].doc_id == "huangshi.txt"
    second = fake_pipeline._live
    assert second is not first
    # Segments that were open stay open: a write maps only its own new segment.
    assert all(old_segments[s.seg] is s for s in second.snapshot.segments if s.seg in old_segments)
    assert len(second.snapshot.segments) == len(old_segments) + 1


def test_vectors_are_memory_mapped_not_loaded(fake_pipeline):
    snapshot = fake_pipeline.retriever().snapshot
    import mmap

    def backed_by_a_mapping(array) -> bool:
        while array is not None and not isinstance(array, mmap.mmap):
            array = getattr(array, "base", None)
        return array is not None

    for segment in snapshot.segments:
        assert backed_by_a_mapping(segment.a.chunk_vectors) and backed_by_a_mapping(segment.a.sentence_vectors)
        assert not segment.a.chunk_vectors.flags.writeable


# ---------------------------------------------------------------- search pieces


def test_query_plan_is_computed_once_per_question():
    assert query_plan("宜昌急救圈") is query_plan("宜昌急救圈")
    assert query_plan("宜昌急救圈").tokens == ("宜昌", "急救", "圈")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("filters", [None, Filters(doc_ids=("wuhan.txt", "ezhou.txt")), Filters(region="宜昌")])
def test_search_with_a_vector_computed_beforehand_is_the_same_search(fake_pipeline, mode, filters):
    for query in ("宜昌急救圈", "红色网格驿站", "How many minutes for emergency care in Wuhan?"):
        vector = fake_pipeline.query_vector(query)
        assert fake_pipeline.search(query, k=4, mode=mode, filters=filters, query_vector=vector) == \
            fake_pipeline.search(query, k=4, mode=mode, filters=filters)


def test_dense_scores_are_the_per_chunk_maximum(fake_pipeline):
    retriever = fake_pipeline.retriever()
    snapshot = retriever.snapshot
    vector = fake_pipeline.query_vector("宜昌急救圈")
    positions, _ = snapshot.all_chunks()
    chunk_vectors = snapshot.chunk_vectors(positions)
    scores = dict(zip(positions.tolist(), retriever.dense_scores_at(vector, positions).tolist()))
    for row, pos in enumerate(positions.tolist()):
        expected = float(chunk_vectors[row] @ vector)
        sentences = retriever.chunk_sentences(pos)
        if sentences:
            expected = max(expected, float(np.max(retriever.data.sentence_vectors[sentences] @ vector)))
        assert scores[pos] == pytest.approx(expected, abs=1e-6)


def test_filter_scopes_match_allowed_docs(fake_pipeline):
    retriever = fake_pipeline.retriever()
    filters = Filters(date_from="2021-01-01", date_to="2021-12-31")
    scope = retriever.scope(filters)
    assert scope is retriever.scope(Filters(date_from="2021-01-01", date_to="2021-12-31"))  # cached
    assert sorted(scope.doc_ids) == retriever.allowed_docs(filters) == ["ezhou.txt"]
    assert retriever.scope(None).doc_ids is None
    assert {h.doc_id for h in retriever.search("急救圈 驿站", k=10, filters=filters)} == {"ezhou.txt"}


def test_another_writer_is_seen_by_the_next_request(fake_pipeline, tiny_corpus):
    fresh = Pipeline(fake_pipeline.settings, embedder=fake_pipeline.embedder)
    assert not fresh.search_is_light()  # nothing loaded yet
    before = fresh.search("宜昌急救圈", k=1)
    assert fresh.search_is_light()
    # another writer (here another Pipeline on the same folder) adds a document
    (tiny_corpus / "huangshi.txt").write_text("黄石市森林消防驿站建成投用。\n", encoding="utf-8")
    fake_pipeline.index(tiny_corpus)
    assert fresh.search("黄石森林消防驿站", k=1)[0].doc_id == "huangshi.txt"  # seen at once
    assert fresh.search_is_light()
    assert before
