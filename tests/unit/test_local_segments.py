"""Segment search through IVF (the path large segments take) against exact search."""

import numpy as np
import pytest

import qa.index.local.segments as segments
from qa.index.local.segments import Segment, SegmentArrays, write_segment


def _clustered(n: int, dim: int = 32, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _segment(tmp_path, vectors: np.ndarray) -> Segment:
    n = len(vectors)
    write_segment(tmp_path / "1", SegmentArrays(
        chunk_vectors=vectors, sentence_vectors=vectors[:0], cs_ptr=np.zeros(n + 1, np.int64),
        cs_idx=np.zeros(0, np.int64), chunk_docs=np.arange(n) % 7, sentence_docs=np.zeros(0, np.int64),
        chunk_lengths=np.ones(n, np.int32)), ann=True)
    return Segment.open(tmp_path / "1", 1)


def test_ivf_finds_what_exact_search_finds(tmp_path):
    vectors = _clustered(3000)
    seg = _segment(tmp_path, vectors)
    assert "chunks" in seg.ann
    queries = _clustered(40, seed=9)
    found = total = 0
    for q in queries:
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        _, ids = seg.search("chunks", q, 10, None)
        found += len(exact & set(ids.tolist()))
        total += 10
    assert found / total >= 0.95


@pytest.mark.parametrize("filtered_exact_max", [8192, 10])  # exact over the allowed rows; IVF with a selector
def test_a_filter_is_exact_on_either_path(tmp_path, monkeypatch, filtered_exact_max):
    monkeypatch.setattr(segments, "FILTERED_EXACT_MAX", filtered_exact_max)
    vectors = _clustered(3000)
    seg = _segment(tmp_path, vectors)
    allowed = np.asarray(seg.a.chunk_docs) == 3  # one "document" in seven
    q = vectors[3 + 7 * 11]  # an allowed row: it must come first
    scores, ids = seg.search("chunks", q, 5, allowed)
    assert ids[0] == 3 + 7 * 11 and abs(scores[0] - 1.0) < 0.02  # 8-bit codes on the IVF path
    assert all(allowed[i] for i in ids) and len(ids) == 5


@pytest.mark.parametrize("seed", range(4))
def test_rows_read_from_the_file_equal_the_mapped_rows(tmp_path, seed):
    vectors = _clustered(3000)
    seg = _segment(tmp_path, vectors)
    ids = np.random.default_rng(seed).integers(0, 3000, 400)
    ids[:50] = np.arange(100, 150)  # a run, and repeats from the random part
    assert np.array_equal(seg.rows("chunks", ids), vectors[ids])
