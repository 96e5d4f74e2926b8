"""Index build, persistence and incremental updates, with the hash embedder."""

import json
import os

import numpy as np
import pytest

from qa.index.store import current_version, load_index
from qa.embed import HashEmbedder
from qa.errors import EmptyCorpusError, IndexMismatchError, NoIndexError, NotFoundError
from qa.pipeline import Pipeline
from qa.settings import Settings


class CountingEmbedder(HashEmbedder):
    """Counts every text it embeds, so tests can check what was (not) re-embedded."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def embed(self, texts, kind):
        if kind == "passage":
            self.count += len(texts)
        return super().embed(texts, kind)


def _pipeline(tmp_path, corpus, embedder=None):
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedder="hash", chunk_size=60, chunk_overlap=10)
    return Pipeline(settings, embedder=embedder or CountingEmbedder())


def test_manifest_and_files(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    report = p.index(tiny_corpus)
    assert sorted(report.added) == ["ezhou.txt", "wuhan.txt", "yichang.txt"]
    folder = current_version(tmp_path / "index")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["embedder"] == "hash" and manifest["dim"] == 256
    assert manifest["chunk_size"] == 60 and manifest["chunk_overlap"] == 10
    assert set(manifest["documents"]) == {"ezhou.txt", "wuhan.txt", "yichang.txt"}
    data = load_index(tmp_path / "index")
    assert len(data.chunks) == data.chunk_vectors.shape[0] == data.chunk_store.ntotal
    assert len(data.sentences) == data.sentence_vectors.shape[0]
    for chunk in data.chunks:  # offsets point into the original text
        assert data.documents[chunk.doc_id].text[chunk.start:chunk.end] == chunk.text


def test_unchanged_corpus_embeds_nothing(tmp_path, tiny_corpus):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, emb)
    p.index(tiny_corpus)
    first = emb.count
    version = current_version(tmp_path / "index")
    report = p.index(tiny_corpus)
    assert report.is_noop and emb.count == first
    assert current_version(tmp_path / "index") == version  # nothing written


def test_only_changed_documents_are_embedded(tmp_path, tiny_corpus):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, emb)
    p.index(tiny_corpus)
    before = load_index(tmp_path / "index")
    wuhan_vectors = before.chunk_vectors[[i for i, c in enumerate(before.chunks) if c.doc_id == "wuhan.txt"]]
    emb.count = 0
    (tiny_corpus / "ezhou.txt").write_text("鄂州新增一句话。建成驿站。\n", encoding="utf-8")
    (tiny_corpus / "yichang.txt").unlink()
    (tiny_corpus / "new.md").write_text("# 咸宁\n咸宁推进社区治理。\n", encoding="utf-8")
    report = p.index(tiny_corpus)
    assert report.changed == ("ezhou.txt",) and report.deleted == ("yichang.txt",) and report.added == ("new.md",)
    after = load_index(tmp_path / "index")
    fresh = [c for c in after.chunks if c.doc_id in ("ezhou.txt", "new.md")]
    fresh_sentences = [s for s in after.sentences if s.doc_id in ("ezhou.txt", "new.md")]
    assert emb.count == len(fresh) + len(fresh_sentences)
    assert {c.doc_id for c in after.chunks} == {"ezhou.txt", "wuhan.txt", "new.md"}
    kept = after.chunk_vectors[[i for i, c in enumerate(after.chunks) if c.doc_id == "wuhan.txt"]]
    np.testing.assert_array_equal(kept, wuhan_vectors)


def test_other_embedder_is_refused(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)

    class Other(HashEmbedder):
        name = "other"

    q = Pipeline(p.settings.model_copy(update={"embedder": "other"}), embedder=Other())
    with pytest.raises(IndexMismatchError, match="built with embedder 'hash'"):
        q.search("宜昌")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        q.index(tiny_corpus)
    assert q.index(tiny_corpus, rebuild=True).added


def test_crash_during_write_keeps_previous_index(tmp_path, tiny_corpus, monkeypatch):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    (tiny_corpus / "extra.txt").write_text("咸宁新文件。\n", encoding="utf-8")

    import qa.index.store as store

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.np, "save", boom)
    with pytest.raises(OSError):
        p.index(tiny_corpus)
    monkeypatch.undo()
    data = load_index(tmp_path / "index")
    assert "extra.txt" not in data.documents and len(data.documents) == 3
    leftovers = [x for x in os.listdir(tmp_path / "index") if x.startswith(".tmp-")]
    assert leftovers == []


def test_errors_for_missing_and_empty(tmp_path):
    p = _pipeline(tmp_path, tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        p.index(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpusError, match="no readable document"):
        p.index(tmp_path / "empty")
    with pytest.raises(NoIndexError, match="qa index"):
        p.search("宜昌")


def test_uploads_never_write_into_the_bundled_sample(tmp_path, monkeypatch):
    import qa.pipeline as pipeline_module
    from qa.settings import SAMPLE_CORPUS

    # a stand-in for the bundled sample, so the test never touches the real one
    fake_sample = tmp_path / "sample"
    fake_sample.mkdir()
    (fake_sample / "a.txt").write_text("宜昌打造急救圈。\n", encoding="utf-8")
    monkeypatch.setattr(pipeline_module, "SAMPLE_CORPUS", fake_sample)
    settings = Settings(corpus_dir=fake_sample, index_dir=tmp_path / "cache" / "index", embedder="hash")
    p = Pipeline(settings, embedder=CountingEmbedder())
    p.index(fake_sample)  # explicitly the sample folder
    name, _ = p.add_document("new.txt", "鄂州建成驿站。\n".encode())
    assert sorted(x.name for x in fake_sample.iterdir()) == ["a.txt"]
    assert (tmp_path / "cache" / "corpus" / "new.txt").exists()
    assert {d.doc_id for d in p.documents()} == {"a.txt", "new.txt"}
    assert SAMPLE_CORPUS.exists()
