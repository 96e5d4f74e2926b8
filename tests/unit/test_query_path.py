"""The cheap query path: array fusion, the CURRENT pointer check, vectors shared with
the FAISS store, and searching with a query vector computed beforehand."""

import gc
import os

import numpy as np
import pytest

from qa.fusion import score_fusion, score_fusion_arrays, top_k, top_k_arrays
from qa.index.store import CURRENT, VersionPointer, share_vectors
from qa.index.vectors import build_vector_store
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


# ---------------------------------------------------------------- CURRENT pointer


def _make_live(root, name):
    (root / name).mkdir(exist_ok=True)
    tmp = root / ".CURRENT.tmp"
    tmp.write_text(name, encoding="utf-8")
    os.replace(tmp, root / CURRENT)  # what save_index does


def test_version_pointer_follows_every_swap(tmp_path):
    pointer = VersionPointer()
    assert pointer.name(tmp_path) is None
    _make_live(tmp_path, "v1")
    assert pointer.name(tmp_path) == "v1"
    # Same length, written within the same clock tick: the new inode gives it away.
    _make_live(tmp_path, "v2")
    assert pointer.name(tmp_path) == "v2"
    _make_live(tmp_path, "v1")
    assert pointer.name(tmp_path) == "v1"


def test_version_pointer_without_the_version_folder_or_pointer(tmp_path):
    pointer = VersionPointer()
    _make_live(tmp_path, "v1")
    assert pointer.name(tmp_path) == "v1"
    (tmp_path / "v1").rmdir()
    assert pointer.name(tmp_path) is None  # as current_version(): no complete index
    (tmp_path / "v1").mkdir()
    (tmp_path / CURRENT).unlink()
    assert pointer.name(tmp_path) is None


def test_version_pointer_memo_lasts_max_age_or_until_forgotten(tmp_path):
    pointer = VersionPointer(max_age_s=3600)
    _make_live(tmp_path, "v1")
    assert pointer.name(tmp_path) == "v1"
    _make_live(tmp_path, "v2")
    assert pointer.name(tmp_path) == "v1"  # within max_age: not looked at again
    pointer.forget()
    assert pointer.name(tmp_path) == "v2"
    assert pointer.name(tmp_path / "elsewhere") is None  # the memo is per folder


def test_pipeline_uses_its_own_swap_at_once_without_reloading_it(fake_pipeline, tiny_corpus):
    fake_pipeline._pointer.max_age_s = 3600  # a memo that would outlast the write
    old = fake_pipeline._current().data.version
    (tiny_corpus / "huangshi.txt").write_text("黄石市森林消防驿站建成投用。\n", encoding="utf-8")
    fake_pipeline.index(tiny_corpus)
    built = fake_pipeline._live
    view = fake_pipeline._current()
    assert view.data.version != old and "huangshi.txt" in view.data.documents
    assert fake_pipeline._live is built  # the index it just built, not a second load from disk


# ---------------------------------------------------------------- shared vectors


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_stored_vectors_are_the_stores_own_read_only_copy(kind):
    m = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    store = build_vector_store(kind, m)
    shared = share_vectors(m, store)
    assert shared is not m and np.array_equal(shared, m)
    assert not shared.flags.writeable
    with pytest.raises(ValueError):
        shared[0, 0] = 1.0


def test_ivf_and_differing_vectors_keep_the_matrix():
    m = np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32)
    assert share_vectors(m, build_vector_store("ivf", m)) is m
    assert share_vectors(m, build_vector_store("flat", m + 1)) is m


def test_a_shared_view_outlives_its_store():
    m = np.random.default_rng(2).standard_normal((1000, 16)).astype(np.float32)
    rows = share_vectors(m, build_vector_store("flat", m))[10:20]
    gc.collect()
    _ = [np.ones(50_000) for _ in range(20)]  # reuse freed memory, were the store gone
    assert np.array_equal(rows, m[10:20])


def test_loaded_index_answers_from_the_stores_vectors(fake_pipeline):
    data = fake_pipeline._current().data
    assert not data.chunk_vectors.flags.writeable and not data.sentence_vectors.flags.writeable
    assert np.array_equal(data.chunk_vectors, np.load(fake_pipeline.index_dir / data.version / "chunk_vectors.npy"))


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
    data = retriever.data
    vector = fake_pipeline.query_vector("宜昌急救圈")
    positions = list(range(len(data.chunks)))
    scores = dict(zip(positions, retriever.dense_scores_at(vector, np.array(positions)).tolist()))
    for pos in positions:
        expected = float(data.chunk_vectors[pos] @ vector)
        sentences = retriever.chunk_sentences(pos)
        if sentences:
            expected = max(expected, float(np.max(data.sentence_vectors[sentences] @ vector)))
        assert scores[pos] == pytest.approx(expected, abs=1e-6)


def test_filter_scopes_match_allowed_docs(fake_pipeline):
    retriever = fake_pipeline.retriever()
    filters = Filters(date_from="2021-01-01", date_to="2021-12-31")
    scope = retriever.scope(filters)
    assert scope is retriever.scope(Filters(date_from="2021-01-01", date_to="2021-12-31"))  # cached
    assert scope.docs == retriever.allowed_docs(filters) == ["ezhou.txt"]
    assert sorted(scope.chunks.tolist()) == [i for i, c in enumerate(retriever.data.chunks) if c.doc_id == "ezhou.txt"]
    assert retriever.scope(None).docs is None


def test_search_is_light_until_another_writer_swaps_the_index(fake_pipeline, tiny_corpus):
    fresh = Pipeline(fake_pipeline.settings, embedder=fake_pipeline.embedder)
    assert not fresh.search_is_light()  # nothing loaded yet
    before = fresh.search("宜昌急救圈", k=1)
    assert fresh.search_is_light()
    # another writer (here another Pipeline on the same folder) adds a document
    (tiny_corpus / "huangshi.txt").write_text("黄石市森林消防驿站建成投用。\n", encoding="utf-8")
    fake_pipeline.index(tiny_corpus)
    assert not fresh.search_is_light()  # a newer version is waiting to be loaded
    assert fresh.search("黄石森林消防驿站", k=1)[0].doc_id == "huangshi.txt"  # seen at once
    assert fresh.search_is_light()
    assert before
