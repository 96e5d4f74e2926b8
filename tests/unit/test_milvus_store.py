"""The Milvus store on Milvus Lite 2.5.1 (embedded), with the hash embedder.

Every test gets its own database file in tmp_path. The local store is the reference:
the same corpus indexed into both must give the same hits, scores and citations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("milvus_lite", reason="the milvus extra is not installed: pip install 'qa-gov[milvus]'")

import qa.index.build as build_module  # noqa: E402
from qa.embed import HashEmbedder  # noqa: E402
from qa.errors import IndexMismatchError, StoreUnavailableError  # noqa: E402
from qa.eval.processes import free_port  # noqa: E402
from qa.index.base import EVERYTHING, Scope  # noqa: E402
from qa.index.milvus import MilvusStore, key_of  # noqa: E402
from qa.pipeline import Pipeline  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import Filters  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = ("宜昌打造多少分钟急救圈?", "鄂州建成了多少个红色网格驿站?", "武汉 人脸识别", "What emergency-care radius did Yichang set?",
             "P2实验室")


from test_index_build import CountingEmbedder  # noqa: E402  (the one embedder that counts what it embeds)


def _settings(tmp_path: Path, corpus: Path, store: str, **extra) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp_path / f"index-{store}", embedder="hash", chunk_size=60,
                    chunk_overlap=10, store=store, milvus_uri=str(tmp_path / "milvus.db"), **extra)


def _pipeline(tmp_path, corpus, store="milvus", embedder=None, **extra) -> Pipeline:
    return Pipeline(_settings(tmp_path, corpus, store, **extra), embedder=embedder or CountingEmbedder())


def _rows(store: MilvusStore, kind: str, doc_key: int) -> int:
    return len(store.query(kind, "test", filter=f"doc_key == {doc_key}", output_fields=["doc_key"]))


def test_index_lists_documents_and_rows_point_into_the_text(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    report = p.index(tiny_corpus)
    assert sorted(report.added) == ["ezhou.txt", "wuhan.txt", "yichang.txt"]
    assert [d.doc_id for d in p.documents()] == ["ezhou.txt", "wuhan.txt", "yichang.txt"]
    store = p.store
    assert isinstance(store, MilvusStore)
    settings = store.index_settings()
    assert (settings.embedder, settings.dim, settings.chunk_size, settings.chunk_overlap) == ("hash", 256, 60, 10)
    snap = store.snapshot()
    ids, chunks = snap.all_chunks()
    assert len(chunks) == snap.n_chunks == report.chunks > 3
    for cid, chunk in zip(ids.tolist(), chunks):
        assert snap.document(chunk.doc_id).text[chunk.start:chunk.end] == chunk.text
        for sid in snap.chunk_sentences(cid):
            s = snap.sentence(sid)
            assert s.doc_id == chunk.doc_id and snap.document(s.doc_id).text[s.start:s.end] == s.text
    # Neighbours stay inside one document.
    first = snap.chunk_sentences(int(ids[0]))[0]
    assert snap.neighbour(first, -1) is None or key_of(snap.neighbour(first, -1)) == key_of(first)


def test_unchanged_corpus_embeds_nothing_and_commits_nothing(tmp_path, tiny_corpus, monkeypatch):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, embedder=emb)
    p.index(tiny_corpus)
    first, generation = emb.count, p.store.state()["generation"]
    hashed = []
    real_hash = build_module.content_hash
    monkeypatch.setattr(build_module, "content_hash", lambda data: hashed.append(1) or real_hash(data))
    # A new process's view: a fresh store object on the same file.
    again = _pipeline(tmp_path, tiny_corpus, embedder=emb)
    report = again.index(tiny_corpus)
    assert report.is_noop and emb.count == first and hashed == []
    assert again.store.state()["generation"] == generation


def test_a_changed_file_replaces_its_rows_and_a_deleted_one_is_removed(tmp_path, tiny_corpus):
    emb = CountingEmbedder()
    p = _pipeline(tmp_path, tiny_corpus, embedder=emb)
    p.index(tiny_corpus)
    store = p.store
    old = store.snapshot()
    wuhan_key, ezhou_key, yichang_key = old.keys["wuhan.txt"], old.keys["ezhou.txt"], old.keys["yichang.txt"]
    emb.count = 0
    (tiny_corpus / "ezhou.txt").write_text("鄂州新增一句话。鄂州建成驿站200个。\n", encoding="utf-8")
    (tiny_corpus / "yichang.txt").unlink()
    report = p.index(tiny_corpus)
    assert report.changed == ("ezhou.txt",) and report.deleted == ("yichang.txt",)
    assert emb.count == report.embedded_texts > 0  # only the changed file was embedded
    snap = store.snapshot()
    assert snap.keys["wuhan.txt"] == wuhan_key  # untouched rows keep their key
    assert snap.keys["ezhou.txt"] != ezhou_key and "yichang.txt" not in snap.keys
    for kind in ("chunks", "sentences", "texts", "terms", "documents"):
        assert _rows(store, kind, ezhou_key) == 0 and _rows(store, kind, yichang_key) == 0  # deleted by filter
        assert _rows(store, kind, snap.keys["ezhou.txt"]) > 0
    _, chunks = snap.all_chunks()
    assert {c.doc_id for c in chunks} == {"ezhou.txt", "wuhan.txt"} and len(chunks) == snap.n_chunks
    assert "yichang.txt" not in {h.doc_id for h in p.search("宜昌急救圈", k=10)}
    assert p.search("鄂州 驿站 200", k=1)[0].doc_id == "ezhou.txt"


def test_upload_and_delete_through_the_pipeline(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    name, report = p.add_document("huangshi.txt", "黄石市打造“20分钟”急救圈。\n".encode())
    assert report.added == ("huangshi.txt",)
    assert p.search("黄石急救圈", k=1)[0].doc_id == "huangshi.txt"
    p.delete_document("huangshi.txt")
    assert "huangshi.txt" not in {h.doc_id for h in p.search("黄石急救圈", k=10)}
    assert "huangshi.txt" not in {d.doc_id for d in p.documents()}


def test_filters_restrict_hits(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    for mode in ("dense", "bm25", "hybrid"):
        hits = p.search("急救圈", k=10, mode=mode, filters=Filters(region="武汉"))
        assert hits and {h.doc_id for h in hits} == {"wuhan.txt"}
        hits = p.search("急救圈", k=10, mode=mode, filters=Filters(doc_ids=("ezhou.txt", "yichang.txt")))
        assert hits and {h.doc_id for h in hits} <= {"ezhou.txt", "yichang.txt"}
        assert p.search("急救圈", k=10, mode=mode, filters=Filters(date_from="2030-01-01")) == []
    snap = p.store.snapshot()
    ids, _ = snap.lexical(["急救"], Scope(frozenset({"wuhan.txt"})))
    assert ids.size and {key_of(i) for i in ids.tolist()} == {snap.keys["wuhan.txt"]}


def test_same_hits_scores_and_citations_as_the_local_store(tmp_path, tiny_corpus):
    local = _pipeline(tmp_path, tiny_corpus, store="local")
    local.index(tiny_corpus)
    milvus = _pipeline(tmp_path, tiny_corpus)
    milvus.index(tiny_corpus)
    for question in QUESTIONS:
        for mode in ("dense", "bm25", "hybrid"):
            a = local.search(question, k=5, mode=mode)
            b = milvus.search(question, k=5, mode=mode)
            assert [(h.doc_id, h.start, h.end) for h in a] == [(h.doc_id, h.start, h.end) for h in b], (question, mode)
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4, atol=1e-5)
        x, y = local.ask(question), milvus.ask(question)
        assert (x.answer, x.refused) == (y.answer, y.refused)
        assert [c.to_json() for c in x.citations] == [c.to_json() for c in y.citations]
        for c in y.citations:  # the round trip: the quote is the original text at its offsets
            assert milvus.document(c.doc_id).text[c.start:c.end] == c.quote


def test_bm25_scores_equal_the_local_stores(tmp_path, tiny_corpus):
    local = _pipeline(tmp_path, tiny_corpus, store="local")
    local.index(tiny_corpus)
    milvus = _pipeline(tmp_path, tiny_corpus)
    milvus.index(tiny_corpus)
    with local.store.reading():
        ls = local.store.snapshot()
        l_ids, l_chunks = ls.all_chunks()
        m_snap = milvus.store.snapshot()
        m_ids, m_chunks = m_snap.all_chunks()
        by_span = {(c.doc_id, c.start): i for i, c in zip(m_ids.tolist(), m_chunks)}
        to_milvus = {i: by_span[(c.doc_id, c.start)] for i, c in zip(l_ids.tolist(), l_chunks)}
        for query in (["急救", "分钟"], ["鄂州", "驿站"], ["宜昌"]):
            lp, lv = ls.lexical(query, EVERYTHING)
            mp, mv = m_snap.lexical(query, EVERYTHING)
            got = dict(zip(mp.tolist(), mv.tolist()))
            assert len(got) == len(lp)
            for i, v in zip(lp.tolist(), lv.tolist()):
                assert got[to_milvus[i]] == pytest.approx(v, rel=1e-4)


def test_jieba_analyzer_mode_searches_too(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus, milvus_bm25="jieba")
    p.index(tiny_corpus)
    assert p.search("鄂州 红色网格驿站", k=1, mode="bm25")[0].doc_id == "ezhou.txt"


def test_other_embedder_is_refused(tmp_path, tiny_corpus):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    other = Pipeline(_settings(tmp_path, tiny_corpus, "milvus").model_copy(update={"chunk_size": 80}),
                     embedder=HashEmbedder())
    (tiny_corpus / "new.txt").write_text("孝感打造急救圈。\n", encoding="utf-8")
    with pytest.raises(IndexMismatchError):
        other.index(tiny_corpus)


def test_a_write_cut_off_before_its_commit_is_invisible_and_cleaned_up(tmp_path, tiny_corpus, monkeypatch):
    p = _pipeline(tmp_path, tiny_corpus)
    p.index(tiny_corpus)
    store = p.store
    before = store.snapshot()
    hits_before = [(h.doc_id, h.start) for h in p.search("鄂州驿站", k=5)]

    def crash(state):
        raise RuntimeError("killed")

    monkeypatch.setattr(store, "_put_state", crash)
    (tiny_corpus / "ezhou.txt").write_text("鄂州全新内容。驿站300个。\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        p.index(tiny_corpus)
    monkeypatch.undo()
    fresh = MilvusStore(str(tmp_path / "milvus.db"))
    snap = fresh.snapshot()
    assert snap.generation == before.generation and snap.keys == before.keys
    assert [(h.doc_id, h.start) for h in p.search("鄂州驿站", k=5)] == hits_before
    orphans = fresh.query("documents", "test", filter=f"gen_from > {snap.generation}", output_fields=["doc_key"])
    assert len(orphans) == 1
    fresh.cleanup()
    for kind in ("documents", "chunks", "sentences"):
        assert _rows(fresh, kind, int(orphans[0]["doc_key"])) == 0


def test_long_documents_are_stored_in_parts(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "十堰\n" + "".join(f"十堰第{i}项工作取得进展,群众满意度提升。" for i in range(3000))
    (corpus / "long.txt").write_text(text, encoding="utf-8")
    p = _pipeline(tmp_path, corpus)
    p.index(corpus)
    doc = p.document("long.txt")
    assert len(doc.text) > 60_000 and doc.text == (corpus / "long.txt").read_text(encoding="utf-8")
    assert p.store.snapshot().by_key[p.store.snapshot().keys["long.txt"]]["n_parts"] > 3


def test_unknown_store_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="choose one of: local, milvus"):
        Settings(store="sqlite")


def test_unreachable_milvus_is_one_clear_error(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError, match="127.0.0.1") as err:
        MilvusStore(uri)
    assert "running" in err.value.hint
    env = {**os.environ, "QA_STORE": "milvus", "QA_MILVUS_URI": uri, "QA_INDEX_DIR": str(tmp_path / "i")}
    done = subprocess.run([sys.executable, "-m", "qa.cli", "documents"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and uri in lines[0] and "--milvus-uri" in lines[0]
    missing = tmp_path / "nowhere" / "x.db"
    with pytest.raises(StoreUnavailableError, match="does not exist"):
        MilvusStore(str(missing))


@pytest.mark.parametrize("preload_rows", [0, 50_000])
def test_term_statistics_equal_the_local_stores(tmp_path, tiny_corpus, monkeypatch, preload_rows):
    import qa.index.milvus as milvus_module

    monkeypatch.setattr(milvus_module, "PRELOAD_TERM_ROWS", preload_rows)  # per-term queries, or one load
    local = _pipeline(tmp_path, tiny_corpus, store="local")
    local.index(tiny_corpus)
    milvus = _pipeline(tmp_path, tiny_corpus)
    milvus.index(tiny_corpus)
    (tiny_corpus / "wuhan.txt").unlink()  # a retired version's rows must not count
    local.index(tiny_corpus)
    milvus.index(tiny_corpus)
    with local.store.reading():
        expected = local.store.snapshot().term_stats()
        got = milvus.store.snapshot().term_stats()
        assert got.n == expected.n
        for term in ("急救", "分钟", "鄂州", "驿站", "p2", "人脸识别", "不存在的词"):
            assert got.df.get(term, 0) == expected.df.get(term, 0), term


def test_a_local_index_copied_into_milvus_answers_alike_and_reindexes_as_a_noop(tmp_path, tiny_corpus):
    from qa.index.milvus import copy_into

    local = _pipeline(tmp_path, tiny_corpus, store="local")
    local.index(tiny_corpus)
    emb = CountingEmbedder()
    milvus = _pipeline(tmp_path, tiny_corpus, embedder=emb)
    with local.store.reading():
        assert copy_into(local.store.snapshot(), milvus.store, local.store.stamps()) == 3
    assert emb.count == 0
    assert milvus.index(tiny_corpus).is_noop and emb.count == 0  # the stamps came along
    for question in QUESTIONS:
        assert [(h.doc_id, h.start) for h in local.search(question)] == [(h.doc_id, h.start) for h in milvus.search(question)]
        assert [c.to_json() for c in local.ask(question).citations] == [c.to_json() for c in milvus.ask(question).citations]


def test_module_doctests():
    import doctest

    import qa.index.milvus

    failures, tried = doctest.testmod(qa.index.milvus)
    assert tried >= 7 and failures == 0
