"""Build or update an index from documents, embedding only what changed.

Documents whose content hash matches the previous index keep their chunks,
sentences, vectors and BM25 tokens; only added or changed documents are chunked
and embedded. Unchanged corpus → nothing embedded, nothing written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from qa.index.lexical import LexicalIndex, tokenize
from qa.index.store import FORMAT_VERSION, IndexData, Manifest, share_vectors
from qa.index.vectors import build_vector_store
from qa.chunk import ChunkSettings, chunk_document, document_sentences
from qa.clean import clean
from qa.embed import Embedder
from qa.errors import IndexMismatchError
from qa.types import Chunk, Document, Sentence


@dataclass(frozen=True)
class BuildReport:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: tuple[str, ...]
    embedded_texts: int
    chunks: int
    sentences: int
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def _embed_in_batches(
    embedder: Embedder, texts: Sequence[str], batch_size: int, progress: Callable[[int, int], None] | None
) -> np.ndarray:
    out = [np.zeros((0, embedder.dim), dtype=np.float32)]
    for i in range(0, len(texts), batch_size):
        out.append(embedder.embed(texts[i : i + batch_size], kind="passage"))
        if progress:
            progress(min(i + batch_size, len(texts)), len(texts))
    return np.concatenate(out).astype(np.float32)


def check_compatible(previous: Manifest, embedder_name: str) -> None:
    if previous.embedder != embedder_name:
        raise IndexMismatchError(
            f"the existing index was built with embedder {previous.embedder!r}, not {embedder_name!r}",
            hint="rebuild it with `qa index --rebuild`, or keep --embedder "
            f"{previous.embedder}",
        )


def build_index(
    documents: Sequence[Document],
    embedder: Embedder,
    chunking: ChunkSettings,
    vector_index: str = "flat",
    previous: IndexData | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    corpus_dir: str = "",
) -> tuple[IndexData | None, BuildReport]:
    """Return the new index (``None`` when nothing changed) and what was done."""
    timings: dict[str, float] = {}
    reusable = previous is not None and (
        previous.manifest.chunk_size == chunking.size
        and previous.manifest.chunk_overlap == chunking.overlap
        and previous.manifest.vector_index == vector_index
        and previous.manifest.format_version == FORMAT_VERSION
    )
    if previous is not None:
        check_compatible(previous.manifest, embedder.name)
    old_hashes = previous.manifest.documents if reusable else {}
    new_hashes = {d.doc_id: d.content_hash for d in documents}
    added = tuple(sorted(set(new_hashes) - set(old_hashes)))
    deleted = tuple(sorted(set(old_hashes) - set(new_hashes)))
    changed = tuple(sorted(i for i in new_hashes if i in old_hashes and old_hashes[i] != new_hashes[i]))
    unchanged = tuple(sorted(i for i in new_hashes if old_hashes.get(i) == new_hashes[i]))
    if reusable and not (added or deleted or changed) and previous.manifest.corpus_dir == corpus_dir:
        return None, BuildReport(added, changed, deleted, unchanged, 0, len(previous.chunks), len(previous.sentences))

    # Reuse records and vectors of unchanged documents, keyed by doc_id.
    kept_chunks: dict[str, list[tuple[Chunk, tuple[str, ...], np.ndarray]]] = {}
    kept_sentences: dict[str, list[tuple[Sentence, np.ndarray]]] = {}
    if reusable:
        keep = set(unchanged)
        for pos, chunk in enumerate(previous.chunks):
            if chunk.doc_id in keep:
                kept_chunks.setdefault(chunk.doc_id, []).append(
                    (chunk, previous.chunk_tokens[pos], previous.chunk_vectors[pos])
                )
        for pos, sent in enumerate(previous.sentences):
            if sent.doc_id in keep:
                kept_sentences.setdefault(sent.doc_id, []).append((sent, previous.sentence_vectors[pos]))

    t = time.perf_counter()
    fresh_chunks: dict[str, list[Chunk]] = {}
    fresh_sentences: dict[str, list[Sentence]] = {}
    for doc in documents:
        if doc.doc_id in kept_chunks or doc.doc_id in kept_sentences:
            continue
        cleaned = clean(doc.text)
        fresh_chunks[doc.doc_id] = chunk_document(doc, chunking, cleaned)
        fresh_sentences[doc.doc_id] = document_sentences(doc, cleaned)
    timings["chunk"] = time.perf_counter() - t

    t = time.perf_counter()
    to_embed = [c.search_text for cs in fresh_chunks.values() for c in cs]
    n_chunk_texts = len(to_embed)
    to_embed += [s.search_text for ss in fresh_sentences.values() for s in ss]
    vectors = _embed_in_batches(embedder, to_embed, batch_size, progress)
    timings["embed"] = time.perf_counter() - t
    chunk_vecs_new, sent_vecs_new = vectors[:n_chunk_texts], vectors[n_chunk_texts:]

    t = time.perf_counter()
    chunks: list[Chunk] = []
    tokens: list[tuple[str, ...]] = []
    chunk_vecs: list[np.ndarray] = []
    sentences: list[Sentence] = []
    sent_vecs: list[np.ndarray] = []
    ci = si = 0
    for doc in sorted(documents, key=lambda d: d.doc_id):
        if doc.doc_id in kept_chunks or doc.doc_id in kept_sentences:
            for chunk, toks, vec in kept_chunks.get(doc.doc_id, []):
                chunks.append(chunk), tokens.append(toks), chunk_vecs.append(vec)
            for sent, vec in kept_sentences.get(doc.doc_id, []):
                sentences.append(sent), sent_vecs.append(vec)
            continue
        for chunk in fresh_chunks[doc.doc_id]:
            chunks.append(chunk)
            tokens.append(tuple(tokenize(chunk.search_text)))
            chunk_vecs.append(chunk_vecs_new[ci])
            ci += 1
        for sent in fresh_sentences[doc.doc_id]:
            sentences.append(sent)
            sent_vecs.append(sent_vecs_new[si])
            si += 1
    timings["tokenize"] = time.perf_counter() - t

    t = time.perf_counter()
    dim = embedder.dim
    chunk_matrix = np.array(chunk_vecs, dtype=np.float32).reshape(-1, dim)
    sent_matrix = np.array(sent_vecs, dtype=np.float32).reshape(-1, dim)
    chunk_store = build_vector_store(vector_index, chunk_matrix)
    sentence_store = build_vector_store(vector_index, sent_matrix)
    data = IndexData(
        manifest=Manifest(
            format_version=FORMAT_VERSION,
            embedder=embedder.name,
            dim=dim,
            chunk_size=chunking.size,
            chunk_overlap=chunking.overlap,
            vector_index=vector_index,
            documents=dict(sorted(new_hashes.items())),
            corpus_dir=corpus_dir,
            chunks=len(chunks),
            sentences=len(sentences),
        ),
        documents={d.doc_id: d for d in sorted(documents, key=lambda d: d.doc_id)},
        chunks=tuple(chunks),
        chunk_tokens=tuple(tokens),
        sentences=tuple(sentences),
        chunk_vectors=share_vectors(chunk_matrix, chunk_store),
        sentence_vectors=share_vectors(sent_matrix, sentence_store),
        chunk_store=chunk_store,
        sentence_store=sentence_store,
        bm25=LexicalIndex.build(tokens),
    )
    timings["index"] = time.perf_counter() - t
    if not reusable and previous is not None:
        added, changed, deleted, unchanged = tuple(sorted(new_hashes)), (), (), ()
    report = BuildReport(
        added, changed, deleted, unchanged, len(to_embed), len(chunks), len(sentences), timings
    )
    return data, report
