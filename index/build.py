"""Build or update an index from a folder, reading and embedding only what changed.

A file whose size and modification time match what the store recorded is not even
opened; one whose stamp changed is hashed, and parsed only when its bytes changed.
Added and changed documents are cleaned, chunked, embedded and tokenised in batches
of ``batch_docs`` and streamed into one atomic store write, so a bulk build holds one
batch in memory and costs time linear in what it indexes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from qa.chunk import ChunkSettings, chunk_document, document_sentences
from qa.clean import clean
from qa.embed import Embedder
from qa.errors import IndexMismatchError, IngestError
from qa.index.base import DocumentRows, FileStamp, IndexSettings, Store, WriteBatch, iter_batches
from qa.index.lexical import tokenize
from qa.ingest import content_hash, iter_corpus_files, load_document
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
    skipped: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def assign_sentences(chunks: Sequence[Chunk], sentences: Sequence[Sentence]) -> tuple[tuple[int, ...], ...]:
    """For each chunk, the sentences that belong to it (indices into ``sentences``).

    A sentence belongs to every chunk that holds at least half of it. A sentence too
    long for that (over twice the chunk size) belongs to the chunks it mostly covers,
    so that it can still be scored and quoted.

    >>> c = [Chunk("d", 0, 10, "", "", "", ""), Chunk("d", 8, 30, "", "", "", "")]
    >>> s = [Sentence("d", 0, 9, "", ""), Sentence("d", 9, 12, "", ""), Sentence("d", 12, 60, "", "")]
    >>> assign_sentences(c, s)
    ((0,), (1, 2))
    """
    members: list[list[int]] = [[] for _ in chunks]
    spans = sorted((c.start, c.end, i) for i, c in enumerate(chunks))
    starts = [a for a, _, _ in spans]
    import bisect

    for j, s in enumerate(sentences):
        hi = bisect.bisect_left(starts, s.end)
        overlapping = [(min(e, s.end) - max(a, s.start), e - a, i) for a, e, i in spans[max(0, hi - 64):hi]
                       if min(e, s.end) > max(a, s.start)]
        owners = [i for overlap, _, i in overlapping if 2 * overlap >= s.end - s.start]
        if not owners:
            owners = [i for overlap, size, i in overlapping if 2 * overlap >= size]
        if not owners and overlapping:
            owners = [max(overlapping)[2]]
        for i in owners:
            members[i].append(j)
    return tuple(tuple(m) for m in members)


def _embed(embedder: Embedder, texts: Sequence[str], batch_size: int) -> np.ndarray:
    out = [np.zeros((0, embedder.dim), dtype=np.float32)]
    for part in iter_batches(texts, batch_size):
        out.append(embedder.embed(list(part), kind="passage"))
    return np.concatenate(out).astype(np.float32)


def document_rows(documents: Sequence[tuple[Document, FileStamp]], embedder: Embedder,
                  chunking: ChunkSettings, batch_size: int = 32,
                  timings: dict[str, float] | None = None) -> list[DocumentRows]:
    """Chunk, embed and tokenise ``documents`` (embedding them together, in batches)."""
    timings = timings if timings is not None else {}
    t = time.perf_counter()
    parts = []
    for doc, stamp in documents:
        cleaned = clean(doc.text)
        chunks = chunk_document(doc, chunking, cleaned)
        sentences = document_sentences(doc, cleaned)
        parts.append((doc, stamp, chunks, sentences))
    timings["chunk"] = timings.get("chunk", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    texts = [c.search_text for _, _, cs, ss in parts for c in cs] + \
            [s.search_text for _, _, cs, ss in parts for s in ss]
    vectors = _embed(embedder, texts, batch_size)
    timings["embed"] = timings.get("embed", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    n_chunks = sum(len(cs) for _, _, cs, _ in parts)
    chunk_vecs, sent_vecs = vectors[:n_chunks], vectors[n_chunks:]
    out, ci, si = [], 0, 0
    for doc, stamp, chunks, sentences in parts:
        out.append(DocumentRows(
            document=doc, chunks=tuple(chunks), sentences=tuple(sentences),
            chunk_vectors=chunk_vecs[ci:ci + len(chunks)], sentence_vectors=sent_vecs[si:si + len(sentences)],
            chunk_tokens=tuple(tuple(tokenize(c.search_text)) for c in chunks),
            chunk_sentences=assign_sentences(chunks, sentences), size=stamp.size, mtime_ns=stamp.mtime_ns))
        ci += len(chunks)
        si += len(sentences)
    timings["tokenize"] = timings.get("tokenize", 0.0) + time.perf_counter() - t
    return out


def check_compatible(stored: IndexSettings | None, wanted: IndexSettings) -> None:
    """Refuse to add vectors of one model (or chunks of one size) to an index of another."""
    if stored is None or stored == wanted:
        return
    if stored.embedder != wanted.embedder:
        what = f"embedder {stored.embedder!r}, not {wanted.embedder!r}"
        keep = f"--embedder {stored.embedder}"
    else:
        what = (f"chunk size {stored.chunk_size}/{stored.chunk_overlap}, "
                f"not {wanted.chunk_size}/{wanted.chunk_overlap}")
        keep = f"--chunk-size {stored.chunk_size} --chunk-overlap {stored.chunk_overlap}"
    raise IndexMismatchError(f"the existing index was built with {what}",
                             hint=f"rebuild it with `qa index --rebuild`, or keep {keep}")


def stamp_of(path: Path, doc_id: str, digest: str = "") -> FileStamp:
    st = os.stat(path)
    return FileStamp(doc_id, digest, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Scan:
    """What a folder holds against what the store recorded."""

    to_read: tuple[tuple[Path, FileStamp], ...]  # new or changed bytes
    restamped: tuple[FileStamp, ...]  # same bytes, new stamp (touched, copied)
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]
    known: frozenset[str]


def scan_folder(root: Path, recorded: dict[str, FileStamp]) -> Scan:
    """Compare the files below ``root`` with their recorded stamps, reading only the
    files whose size or modification time changed (and hashing those)."""
    to_read, restamped, unchanged, seen = [], [], [], set()
    for path in iter_corpus_files(root):
        doc_id = path.relative_to(root).as_posix()
        seen.add(doc_id)
        stamp = stamp_of(path, doc_id)
        old = recorded.get(doc_id)
        if old is not None and (old.size, old.mtime_ns) == (stamp.size, stamp.mtime_ns):
            unchanged.append(doc_id)
            continue
        digest = content_hash(path.read_bytes())
        stamp = FileStamp(doc_id, digest, stamp.size, stamp.mtime_ns)
        if old is not None and old.content_hash == digest:
            unchanged.append(doc_id)
            restamped.append(stamp)
        else:
            to_read.append((path, stamp))
    deleted = tuple(sorted(set(recorded) - seen))
    return Scan(tuple(to_read), tuple(restamped), tuple(sorted(unchanged)), deleted, frozenset(recorded))


def build_index(root: Path, store: Store, embedder: Embedder, chunking: ChunkSettings, *,
                batch_docs: int = 64, batch_size: int = 32, rebuild: bool = False,
                warn: Callable[[str], None] | None = None,
                progress: Callable[[int, int], None] | None = None,
                only: Sequence[tuple[Path, str]] | None = None) -> BuildReport:
    """Bring ``store`` up to date with the folder ``root`` in one atomic write.

    ``only`` indexes just those ``(file, doc_id)`` pairs (an upload, read from where
    it is staged): the rest of the folder is neither listed nor read, and nothing is
    deleted.
    """
    root = Path(root)
    settings = IndexSettings(embedder.name, embedder.dim, chunking.size, chunking.overlap)
    if rebuild:
        store.clear()
    check_compatible(store.index_settings(), settings)
    recorded = store.stamps()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if only is None:
        scan = scan_folder(root, recorded)
    else:
        to_read = []
        for path, doc_id in only:
            stamp = stamp_of(path, doc_id, content_hash(path.read_bytes()))
            to_read.append((path, stamp))
        scan = Scan(tuple(to_read), (), (), (), frozenset(recorded))
    timings["scan"] = time.perf_counter() - t
    corpus_dir = str(root.resolve())
    corpus_moved = store.corpus_dir() != corpus_dir
    if not scan.to_read and not scan.deleted and not scan.restamped and not corpus_moved:
        return BuildReport((), (), (), scan.unchanged, 0, 0, 0, timings_s=timings)

    added, changed, skipped = [], [], []
    counts = {"texts": 0, "chunks": 0, "sentences": 0}

    def batches() -> Iterator[WriteBatch]:
        first = True
        done = 0
        for part in iter_batches(list(scan.to_read), batch_docs):
            t = time.perf_counter()
            docs = []
            for path, stamp in part:
                try:
                    docs.append((load_document(path, root, doc_id=stamp.doc_id), stamp))
                except IngestError as exc:
                    reason = " ".join(str(exc).split())
                    skipped.append(f"{stamp.doc_id}: {reason}")
                    if warn is not None:
                        warn(f"skipped {stamp.doc_id}: {reason}")
            timings["read"] = timings.get("read", 0.0) + time.perf_counter() - t
            rows = document_rows(docs, embedder, chunking, batch_size, timings)
            for r in rows:
                (changed if r.document.doc_id in scan.known else added).append(r.document.doc_id)
                counts["texts"] += len(r.chunks) + len(r.sentences)
                counts["chunks"] += len(r.chunks)
                counts["sentences"] += len(r.sentences)
            done += len(part)
            if progress:
                progress(done, len(scan.to_read))
            yield WriteBatch(upserts=tuple(rows), deletes=scan.deleted if first else (),
                             stamps=scan.restamped if first else (), corpus_dir=corpus_dir if first else None)
            first = False
        if first:  # nothing to read: deletions and stamps only
            yield WriteBatch(deletes=scan.deleted, stamps=scan.restamped, corpus_dir=corpus_dir)

    t = time.perf_counter()
    store.write(batches(), settings)
    timings["write"] = time.perf_counter() - t - sum(timings.get(k, 0.0) for k in ("read", "chunk", "embed", "tokenize"))
    return BuildReport(tuple(sorted(added)), tuple(sorted(changed)), scan.deleted, scan.unchanged,
                       counts["texts"], counts["chunks"], counts["sentences"], tuple(skipped), timings)
