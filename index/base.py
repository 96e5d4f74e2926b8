"""The store interface: what every index backend keeps and answers, chosen by name.

A store knows rows (documents, chunks, sentences), vectors, BM25 terms and integer
ids; it never scores answers. Writers hand it whole documents (:class:`DocumentRows`)
in a :class:`WriteBatch` that is applied atomically; readers take a
:class:`Snapshot`, a consistent view that stays valid while newer writes commit.

Ids are opaque ``int64`` values that are stable within one snapshot: the local store
numbers rows by position across its segments, Milvus uses primary keys. Everything
the retriever and the answer stage read goes through a snapshot, so neither ever
opens a store's files.

>>> store_names()
('local', 'milvus')
>>> check_store_name("sqlite")
Traceback (most recent call last):
  ...
qa.errors.ConfigError: unknown store 'sqlite' (choose one of: local, milvus)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from qa.errors import ConfigError
from qa.types import Chunk, Document, Sentence

# Backends by name: module and factory, imported only when chosen (Milvus pulls
# pymilvus, which a local-only user never needs).
_STORES: dict[str, str] = {
    "local": "qa.index.local.store:LocalStore",
    "milvus": "qa.index.milvus:MilvusStore",
}


def store_names() -> tuple[str, ...]:
    return tuple(_STORES)


def check_store_name(name: str) -> str:
    if name not in _STORES:
        raise ConfigError(f"unknown store {name!r}", hint=f"choose one of: {', '.join(_STORES)}")
    return name


@dataclass(frozen=True)
class IndexSettings:
    """What the stored vectors and rows mean; a store refuses writes that differ."""

    embedder: str
    dim: int
    chunk_size: int
    chunk_overlap: int


@dataclass(frozen=True)
class DocumentRows:
    """One document ready to store: its record, rows, unit vectors and BM25 tokens.

    ``chunk_sentences[i]`` lists the indices (into ``sentences``) of the sentences
    that belong to chunk ``i``; a chunk's dense score is the best of its own and
    theirs, and the answer stage quotes them.
    """

    document: Document
    chunks: tuple[Chunk, ...]
    sentences: tuple[Sentence, ...]
    chunk_vectors: np.ndarray  # (len(chunks), dim) float32, unit length
    sentence_vectors: np.ndarray  # (len(sentences), dim) float32, unit length
    chunk_tokens: tuple[tuple[str, ...], ...]  # BM25 tokens per chunk
    chunk_sentences: tuple[tuple[int, ...], ...]
    size: int = 0  # the file's stamp (see FileStamp)
    mtime_ns: int = 0


@dataclass(frozen=True)
class FileStamp:
    """How a corpus file looked when it was indexed: an unchanged stamp means the
    file need not even be read again (its bytes are hashed only when it changes)."""

    doc_id: str
    content_hash: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WriteBatch:
    """One atomic write: documents added or replaced (by ``doc_id``) and deleted."""

    upserts: tuple[DocumentRows, ...] = ()
    deletes: tuple[str, ...] = ()
    stamps: tuple[FileStamp, ...] = ()  # file stamps to record (also for unchanged files)
    corpus_dir: str | None = None  # the folder the documents come from, when it changes


@dataclass(frozen=True)
class DocumentInfo:
    """A document as listed (no text)."""

    doc_id: str
    title: str
    date: str | None
    source: str | None
    region: str | None
    chunks: int
    content_hash: str


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of BM25 terms over the live chunks, fetched on demand.

    ``df`` behaves like a read-only ``dict``: ``df.get(term, 0)``.
    """

    df: Mapping[str, int]
    n: int


@dataclass(frozen=True)
class Scope:
    """The documents a filter allows (``doc_ids`` None: every document).

    The retriever decides which documents a filter allows (regions, dates); the
    store only restricts its candidates to their rows.
    """

    doc_ids: frozenset[str] | None = None

    @property
    def is_everything(self) -> bool:
        return self.doc_ids is None

    @property
    def is_empty(self) -> bool:
        return self.doc_ids is not None and not self.doc_ids


EVERYTHING = Scope(None)


class Snapshot(Protocol):
    """A consistent read view of a store. Ids are valid within this snapshot only."""

    version: str  # changes with every committed write
    settings: IndexSettings
    corpus_dir: str
    n_chunks: int  # live rows
    n_sentences: int

    # ---- candidates (the retriever's inputs; scores are raw, fusion is not the store's)
    def nearest(self, vector: np.ndarray, chunk_depth: int, sentence_depth: int,
                scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the nearest chunks and of the nearest sentences' chunks, best first."""
        ...

    def lexical(self, tokens: Sequence[str], scope: Scope, depth: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ids (ascending) with a positive BM25 score, and those scores; only the
        ``depth`` best when given."""
        ...

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Per chunk id: max(chunk cosine, best cosine of its sentences), exact."""
        ...

    # ---- rows by id
    def chunk(self, chunk_id: int) -> Chunk: ...
    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        """Several chunks in one round trip, in the order asked."""
        ...
    def chunk_sentences(self, chunk_id: int) -> list[int]: ...
    def sentence(self, sentence_id: int) -> Sentence: ...
    def neighbour(self, sentence_id: int, step: int) -> int | None:
        """The sentence ``step`` places away in the same document, or None."""
        ...
    def sentence_vectors(self, sentence_ids: np.ndarray) -> np.ndarray: ...
    def document(self, doc_id: str) -> Document | None: ...
    def document_info(self, doc_id: str) -> DocumentInfo | None: ...
    def documents(self) -> list[DocumentInfo]:
        """Every live document, sorted by doc_id."""
        ...
    def term_stats(self) -> TermStats: ...
    def chunk_vectors(self, chunk_ids: np.ndarray) -> np.ndarray: ...
    def all_chunks(self) -> tuple[np.ndarray, list[Chunk]]:
        """Every live chunk with its id: for evaluation and calibration only."""
        ...
    def light(self) -> bool:
        """True when ranking one query (all but embedding it) is well under a millisecond."""
        ...


class Store(Protocol):
    """An index backend. Writes are atomic; readers never see half of one."""

    def reading(self) -> ContextManager[None]:
        """A read transaction: every snapshot row read inside it is of one committed state."""
        ...

    def corpus_dir(self) -> str:
        """The folder the index was last built from ("" when unknown)."""
        ...

    def index_settings(self) -> IndexSettings | None:
        """What the stored vectors mean, or None for an empty store."""
        ...

    def stamps(self) -> dict[str, FileStamp]:
        """The indexed documents' file stamps, by doc_id (for incremental builds)."""
        ...

    def write(self, batches: Iterable[WriteBatch], settings: IndexSettings) -> None:
        """Apply every batch as one atomic write: later snapshots see all of it, or none.

        ``batches`` may be a generator that embeds as it goes, so a bulk build never
        holds more than one batch in memory."""
        ...

    def snapshot(self) -> Snapshot:
        """The live state; cheap when nothing changed since the last call."""
        ...

    def maintain(self, progress: Callable[[str], None] | None = None, bulk: bool = False) -> None:
        """Upkeep that may take a while (merging small segments); ``bulk`` after a
        whole-folder build."""
        ...

    def cleanup(self, background: bool = False) -> None:
        """Remove what no committed state names (a crashed write's files); cheap.
        ``background``: the slow part (unlinking large files) may finish on a thread."""
        ...

    def clear(self) -> None:
        """Remove everything (``qa index --rebuild``)."""
        ...

    def close(self) -> None: ...


def open_store(name: str, settings) -> Store:
    """The store called ``name``, configured from ``settings`` (:class:`qa.settings.Settings`)."""
    import importlib

    module, _, factory = _STORES[check_store_name(name)].partition(":")
    return getattr(importlib.import_module(module), factory).from_settings(settings)


def iter_batches(items: Sequence, size: int) -> Iterator[Sequence]:
    """``items`` in slices of ``size`` (the last one shorter).

    >>> [list(b) for b in iter_batches([1, 2, 3, 4, 5], 2)]
    [[1, 2], [3, 4], [5]]
    """
    for i in range(0, len(items), size):
        yield items[i : i + size]
