import numpy as np
import pytest

from qa.index.vectors import build_vector_store, ivf_lists
from qa.errors import ConfigError


def _unit(rows):
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_nearest_and_filter(kind):
    vectors = _unit([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0, 0, 1]])
    store = build_vector_store(kind, vectors)
    scores, ids = store.search(_unit([[1, 0, 0]]), k=2)
    assert ids[0].tolist() == [0, 2]
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)
    # restricted to positions 1 and 3 the best is whichever is less far: both are orthogonal
    _, ids = store.search(_unit([[0, 1, 0.1]]), k=1, allowed=np.array([1, 3]))
    assert ids[0].tolist() == [1]


def test_empty_allowed_returns_padding():
    store = build_vector_store("flat", _unit([[1, 0], [0, 1]]))
    scores, ids = store.search(_unit([[1, 0]]), k=2, allowed=np.array([], dtype=np.int64))
    assert ids[0].tolist() == [-1, -1]
    assert np.isneginf(scores).all()


def test_unknown_kind_lists_valid_ones():
    with pytest.raises(ConfigError, match="flat, hnsw, ivf"):
        build_vector_store("annoy", _unit([[1, 0]]))


def test_ivf_list_count():
    assert ivf_lists(10) == 1
    assert ivf_lists(100_000) == int(4 * 100_000 ** 0.5)
