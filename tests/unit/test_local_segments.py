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


def test_a_merged_segment_holds_the_kept_rows_and_an_ivf_built_block_by_block(tmp_path, monkeypatch):
    # Blocks of 70 rows: every source's rows cross block boundaries, and the IVF sample
    # and add passes run over many blocks. EXACT_MAX 100 makes the merged matrix large.
    monkeypatch.setattr(segments, "BLOCK_ROWS", 70)
    monkeypatch.setattr(segments, "EXACT_MAX", 100)
    a, b = _clustered(250, seed=1), _clustered(180, seed=2)
    sources = []
    for i, vectors in enumerate((a, b), start=1):
        n = len(vectors)
        write_segment(tmp_path / str(i), SegmentArrays(
            chunk_vectors=vectors, sentence_vectors=vectors[::2], cs_ptr=np.zeros(n + 1, np.int64),
            cs_idx=np.zeros(0, np.int64), chunk_docs=np.full(n, i), sentence_docs=np.full(len(vectors[::2]), i),
            chunk_lengths=np.ones(n, np.int32)))
        sources.append(tmp_path / str(i))
    keep_a, keep_b = np.arange(250) % 3 != 0, np.arange(180) % 5 != 1
    keep_sa, keep_sb = np.ones(125, bool), np.arange(90) < 40
    expected = np.concatenate([a[keep_a], b[keep_b]])
    n = len(expected)
    segments.write_merged_segment(tmp_path / "3", SegmentArrays(
        chunk_vectors=a[:0], sentence_vectors=a[:0], cs_ptr=np.zeros(n + 1, np.int64), cs_idx=np.zeros(0, np.int64),
        chunk_docs=np.zeros(n, np.int64), sentence_docs=np.zeros(165, np.int64), chunk_lengths=np.ones(n, np.int32)),
        [(sources[0], keep_a, keep_sa), (sources[1], keep_b, keep_sb)], dim=32)
    merged = Segment.open(tmp_path / "3", 3)
    assert np.array_equal(merged.a.chunk_vectors, expected)
    assert np.array_equal(merged.a.sentence_vectors, np.concatenate([a[::2], b[::2][:40]]))
    assert set(merged.ann) == {"chunks", "sentences"} and merged.ann["chunks"].ntotal == n
    # the IVF is the one write_segment would build from the same matrix in memory
    write_segment(tmp_path / "4", SegmentArrays(
        chunk_vectors=expected, sentence_vectors=expected[:0], cs_ptr=np.zeros(n + 1, np.int64),
        cs_idx=np.zeros(0, np.int64), chunk_docs=np.zeros(n, np.int64), sentence_docs=np.zeros(0, np.int64),
        chunk_lengths=np.ones(n, np.int32)))
    direct = Segment.open(tmp_path / "4", 4)
    for q in _clustered(10, seed=5):
        assert np.array_equal(merged.search("chunks", q, 10, None)[1], direct.search("chunks", q, 10, None)[1])


def test_a_short_block_stream_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 rows written, the header says 4"):
        segments.write_blocks(tmp_path / "v.npy", 4, 2, [np.zeros((3, 2), np.float32)])
