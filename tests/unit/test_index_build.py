"""Index build, persistence and incremental updates on the local store, with the hash embedder."""

import os
import sqlite3

import numpy as np
import pytest

import qa.index.build as build_module
from qa.embed import HashEmbedder
from qa.errors import EmptyCorpusError, IndexMismatchError, NoIndexError, NotFoundError
from qa.index.base import EVERYTHING
from qa.index.local.store import LocalStore
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


def _generation(index_dir) -> int:
    with sqlite3.connect(index_dir / "catalog.sqlite3") as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def _segment_files(index_dir) -> dict[str, int]:
    root = index_dir / "segments"
    return {f"{d.name}/{f.name}": (f.stat().st_ino, f.stat().st_mtime_ns)
            for d in root.iterdir() for f in d.iterdir()}


def test_rows_point_into_the_original_text(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    report = p.index(tiny_corpus)
    assert sorted(report.added) == ["ezhou.txt", "wuhan.txt", "yichang.txt"]
    store = LocalStore(tmp_path / "index")
    settings = store.index_settings()
    assert (settings.embedder, settings.dim, settings.chunk_size, settings.chunk_overlap) == ("hash", 256, 60, 10)
    with store.reading():
        snap = store.snapshot()
        ids, chunks = snap.all_chunks()
        assert len(chunks) == snap.n_chunks == report.chunks and snap.n_sentences == report.sentences
        assert snap.chunk_vectors(ids).shape == (len(chunks), 256)
        for chunk in chunks:  # offsets point into the original text
            assert snap.document(chunk.doc_id).text[chunk.start:chunk.end] == chunk.text
        for sid in range(snap.n_sentences):
            s = snap.sentence(sid)
            assert snap.document(s.doc_id).text[s.start:s.end] == s.text


def test_unchanged_corpus_reads_and_embeds_nothing(tmp_path, tiny_corpus, monkeypatch):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, emb)
    p.index(tiny_corpus)
    first, generation = emb.count, _generation(tmp_path / "index")
    hashed = []
    real_hash = build_module.content_hash
    monkeypatch.setattr(build_module, "content_hash", lambda data: hashed.append(1) or real_hash(data))
    report = p.index(tiny_corpus)
    assert report.is_noop and emb.count == first and hashed == []  # no file was even read
    assert _generation(tmp_path / "index") == generation  # nothing written
    # A touched file (same bytes, new time) is hashed, restamped, not re-embedded.
    os.utime(tiny_corpus / "wuhan.txt", ns=(1, 1))
    report = p.index(tiny_corpus)
    assert report.is_noop and emb.count == first and len(hashed) == 1
    report = p.index(tiny_corpus)
    assert len(hashed) == 1  # the new stamp was recorded


def test_only_changed_documents_are_embedded(tmp_path, tiny_corpus):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, emb)
    p.index(tiny_corpus)
    store = LocalStore(tmp_path / "index")

    def vectors_of(doc_id):
        with store.reading():
            snap = store.snapshot()
            ids, chunks = snap.all_chunks()
            return snap.chunk_vectors(ids[[c.doc_id == doc_id for c in chunks]])

    wuhan_vectors = vectors_of("wuhan.txt")
    emb.count = 0
    (tiny_corpus / "ezhou.txt").write_text("鄂州新增一句话。建成驿站。\n", encoding="utf-8")
    (tiny_corpus / "yichang.txt").unlink()
    (tiny_corpus / "new.md").write_text("# 咸宁\n咸宁推进社区治理。\n", encoding="utf-8")
    report = p.index(tiny_corpus)
    assert report.changed == ("ezhou.txt",) and report.deleted == ("yichang.txt",) and report.added == ("new.md",)
    with store.reading():
        snap = store.snapshot()
        _, chunks = snap.all_chunks()
        fresh = [c for c in chunks if c.doc_id in ("ezhou.txt", "new.md")]
        assert {c.doc_id for c in chunks} == {"ezhou.txt", "wuhan.txt", "new.md"}
        fresh_sentences = sum(d.chunks for d in snap.documents() if d.doc_id in ("ezhou.txt", "new.md"))
    assert emb.count == report.embedded_texts and report.embedded_texts >= len(fresh) + fresh_sentences // 2
    np.testing.assert_array_equal(vectors_of("wuhan.txt"), wuhan_vectors)
    assert [h.doc_id for h in p.search("宜昌急救圈", k=10)].count("yichang.txt") == 0


def test_an_upload_touches_only_its_own_rows(tmp_path, tiny_corpus, monkeypatch):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, emb)
    p.index(tiny_corpus)
    before = _segment_files(tmp_path / "index")
    loads = []
    real_load = build_module.load_document
    monkeypatch.setattr(build_module, "load_document", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    emb.count = 0
    name, report = p.add_document("huangshi.txt", "黄石市打造“20分钟”急救圈。\n".encode())
    assert name == "huangshi.txt" and report.added == ("huangshi.txt",)
    assert len(loads) == 1 and emb.count == report.embedded_texts  # only the upload was read and embedded
    after = _segment_files(tmp_path / "index")
    assert {k: v for k, v in after.items() if k in before} == before  # no existing segment rewritten
    assert p.search("黄石急救圈", k=1)[0].doc_id == "huangshi.txt"
    p.delete_document("huangshi.txt")
    assert _segment_files(tmp_path / "index") == after  # a deletion only marks rows
    assert "huangshi.txt" not in {h.doc_id for h in p.search("黄石急救圈", k=10)}
    assert not (tiny_corpus / "huangshi.txt").exists()


def test_merged_segments_answer_as_a_fresh_build_does(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    for i in range(9):
        p.add_document(f"extra{i}.txt", f"孝感第{i}号文件。孝感打造{i + 20}分钟急救圈。\n".encode())
    p.delete_document("extra3.txt")
    with sqlite3.connect(tmp_path / "index" / "catalog.sqlite3") as conn:
        # 10 writes, 8 of them merged as they came: a few segments, not one per write
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] <= 3
    fresh = Pipeline(p.settings.model_copy(update={"index_dir": tmp_path / "fresh"}), embedder=HashEmbedder())
    fresh.index(tiny_corpus)

    def ranked(pipeline, q):
        hits = sorted((-round(h.score, 5), h.doc_id, h.start) for h in pipeline.search(q, k=8))
        cut = hits[-1][0]  # passages tied at the cut may differ; the scores may not
        return [h[0] for h in hits], [h for h in hits if h[0] < cut]

    for q in ["宜昌急救圈", "孝感打造25分钟急救圈", "红色网格驿站", "孝感第3号文件"]:
        assert ranked(p, q) == ranked(fresh, q)
    assert LocalStore(tmp_path / "index").maintain() == 0  # nothing left to merge


def test_bm25_scores_match_bm25s(tmp_path, tiny_corpus):
    import bm25s

    from qa.index.lexical import tokenize

    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    store = LocalStore(tmp_path / "index")
    with store.reading():
        snap = store.snapshot()
        ids, chunks = snap.all_chunks()
        corpus = [tokenize(c.search_text) for c in chunks]
        reference = bm25s.BM25()
        reference.index(corpus, show_progress=False)
        for query in (["急救", "分钟"], ["鄂州", "驿站", "驿站"], ["宜昌"]):
            expected = reference.get_scores(query)
            positions, scores = snap.lexical(query, EVERYTHING)
            got = np.zeros(len(chunks))
            got[np.searchsorted(ids, positions)] = scores
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


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


def test_a_failed_write_leaves_the_previous_index(tmp_path, tiny_corpus, monkeypatch):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    generation = _generation(tmp_path / "index")
    (tiny_corpus / "extra.txt").write_text("咸宁新文件。\n", encoding="utf-8")

    import qa.index.local.store as store_module

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.LocalStore, "_remove_document", boom)
    (tiny_corpus / "wuhan.txt").write_text("武汉改了。\n", encoding="utf-8")  # a replacement, so it fails mid-write
    with pytest.raises(OSError):
        p.index(tiny_corpus)
    monkeypatch.undo()
    assert _generation(tmp_path / "index") == generation
    assert {d.doc_id for d in p.documents()} == {"ezhou.txt", "wuhan.txt", "yichang.txt"}
    names = os.listdir(tmp_path / "index" / "segments")
    assert len(names) == 1 and not any(n.startswith(".tmp-") for n in names)


def test_old_format_gets_a_clear_error_and_rebuilds(tmp_path, tiny_corpus):
    index = tmp_path / "index"
    (index / "v1700000000").mkdir(parents=True)
    (index / "CURRENT").write_text("v1700000000")
    p = _pipeline(tmp_path, tiny_corpus)
    with pytest.raises(IndexMismatchError, match="old format.*qa index --rebuild"):
        p.search("宜昌")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        p.index(tiny_corpus)
    assert p.index(tiny_corpus, rebuild=True).added
    assert not (index / "CURRENT").exists() and not (index / "v1700000000").exists()
    assert p.search("宜昌急救圈", k=1)[0].doc_id == "yichang.txt"


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


def test_a_reader_sees_one_state_while_a_write_commits(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    reader = LocalStore(tmp_path / "index")
    with reader.reading():
        old = reader.snapshot()
        p.add_document("huangshi.txt", "黄石市打造急救圈。\n".encode())
        p.delete_document("wuhan.txt")
        # Inside its transaction the reader still sees the state it started with.
        assert reader.snapshot() is old
        assert {d.doc_id for d in old.documents()} == {"ezhou.txt", "wuhan.txt", "yichang.txt"}
        ids, chunks = old.all_chunks()
        assert any(c.doc_id == "wuhan.txt" for c in chunks)
    with reader.reading():
        new = reader.snapshot()
        assert {d.doc_id for d in new.documents()} == {"ezhou.txt", "huangshi.txt", "yichang.txt"}


def _segment_count(index_dir) -> int:
    with sqlite3.connect(index_dir / "catalog.sqlite3") as conn:
        return conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0]


def test_a_bulk_build_ends_in_one_segment_and_a_later_build_leaves_old_ones_alone(tmp_path, tiny_corpus):
    settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", embedder="hash", chunk_size=60,
                        chunk_overlap=10, batch_docs=1)  # one segment per document while writing
    p = Pipeline(settings, embedder=HashEmbedder())
    p.index(tiny_corpus)
    assert _segment_count(tmp_path / "index") == 1  # the build's three segments, merged
    p.add_document("extra.txt", "孝感打造20分钟急救圈。\n".encode())
    assert _segment_count(tmp_path / "index") == 2  # an upload is not a bulk build: no merge
    (tiny_corpus / "more.txt").write_text("黄石打造25分钟急救圈。\n", encoding="utf-8")
    p.index(tiny_corpus)
    # Only this build's own segment is "fresh", and it has no peer: nothing is rewritten.
    assert _segment_count(tmp_path / "index") == 3
    assert [h.doc_id for h in p.search("黄石急救圈", k=1)] == ["more.txt"]
