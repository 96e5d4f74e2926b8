"""Ragged rows as flat arrays (qa.segments): hand-computed values and the per-row loop
they replace."""

import numpy as np
import pytest

from qa.segments import csr, gather_rows, rows_dot_max


def test_csr_layout_by_hand():
    indptr, indices = csr([[3, 1], [], [7], [2, 2, 5]])
    assert indptr.tolist() == [0, 2, 2, 3, 6]
    assert indices.tolist() == [3, 1, 7, 2, 2, 5]
    assert indptr.dtype == indices.dtype == np.int64


def test_csr_of_nothing():
    indptr, indices = csr([])
    assert indptr.tolist() == [0] and indices.tolist() == []


def test_gather_rows_keeps_the_requested_order_and_repeats():
    indptr, indices = csr([[3, 1], [], [7], [2, 2, 5]])
    flat, lengths = gather_rows(indptr, indices, np.array([3, 1, 0, 3]))
    assert flat.tolist() == [2, 2, 5, 3, 1, 2, 2, 5]
    assert lengths.tolist() == [3, 0, 2, 3]


def test_gather_rows_of_empty_rows_only():
    indptr, indices = csr([[], [4]])
    flat, lengths = gather_rows(indptr, indices, np.array([0, 0]))
    assert flat.tolist() == [] and lengths.tolist() == [0, 0]
    flat, lengths = gather_rows(indptr, indices, np.array([], dtype=np.int64))
    assert flat.tolist() == [] and lengths.tolist() == []


def test_rows_dot_max_by_hand():
    vectors = np.array([[1, 0], [0, 1], [3, 4], [-1, -1]], dtype=np.float32)
    query = np.array([2, 1], dtype=np.float32)  # dots: 2, 1, 10, -3
    indptr, indices = csr([[0, 1], [3], [], [3, 2, 1]])
    best, filled = rows_dot_max(vectors, indptr, indices, np.array([0, 1, 2, 3, 1]), query)
    assert best.tolist() == [2.0, -3.0, -np.inf, 10.0, -3.0]
    assert filled.tolist() == [True, True, False, True, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_dot_max_is_bit_identical_to_one_product_per_row(seed):
    # What the retriever did before: one matrix-vector product per chunk. The batched
    # version must round exactly like it (BLAS rounds a row differently depending on
    # how many rows share the call), not just approximately.
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((400, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[7] * 0.6 + vectors[9] * 0.4
    query = (query / np.linalg.norm(query)).astype(np.float32)
    rows_lists, start = [], 0
    while start < 400:
        length = int(rng.integers(0, 10))
        rows_lists.append(list(range(start, min(400, start + length))))
        start += length
    indptr, indices = csr(rows_lists)
    chosen = rng.permutation(len(rows_lists))[: len(rows_lists) // 2]
    best, filled = rows_dot_max(vectors, indptr, indices, chosen, query)
    for value, ok, row in zip(best, filled, chosen):
        members = rows_lists[row]
        assert ok == bool(members)
        if members:
            assert value == np.max(vectors[members] @ query)  # exact, not approximate
        else:
            assert value == -np.inf
