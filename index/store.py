"""The on-disk index: manifest, documents, chunk store, vectors, BM25; atomic swaps.

Layout of an index folder::

    index_dir/
      CURRENT              name of the live version folder (replaced atomically)
      v<timestamp>/        one complete, immutable version
        manifest.json      format version, embedder, dim, chunker settings, doc hashes
        documents.jsonl    Document records (with their text: citations quote it)
        chunks.jsonl       Chunk records + BM25 tokens, in vector-position order
        sentences.jsonl    Sentence records, in vector-position order
        chunk_vectors.npy, sentence_vectors.npy   float32 unit vectors (reused on update)
        chunks.faiss, sentences.faiss             vector stores over those vectors
        bm25/              bm25s index over the chunk tokens

A new version is written beside the live one and made live by replacing CURRENT
with ``os.replace``, which is atomic: a reader, or a crash at any instant, sees
either the old index or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa.index.lexical import LexicalIndex
from qa.index.vectors import FaissStore
from qa.errors import IndexMismatchError, NoIndexError
from qa.types import Chunk, Document, Section, Sentence

FORMAT_VERSION = 1
CURRENT = "CURRENT"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    embedder: str
    dim: int
    chunk_size: int
    chunk_overlap: int
    vector_index: str
    documents: dict[str, str]  # doc_id → content hash
    corpus_dir: str = ""  # absolute folder the documents were read from
    built_at: float = field(default_factory=time.time)
    chunks: int = 0
    sentences: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Manifest":
        return cls(**data)


@dataclass(frozen=True)
class IndexData:
    """Everything a retriever needs, loaded in memory. Positions are list indices."""

    manifest: Manifest
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    chunk_tokens: tuple[tuple[str, ...], ...]
    sentences: tuple[Sentence, ...]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    chunk_store: FaissStore
    sentence_store: FaissStore
    bm25: LexicalIndex
    version: str = ""

    def check_embedder(self, embedder_name: str) -> None:
        """Refuse to query an index with vectors from another embedder."""
        if self.manifest.embedder != embedder_name:
            raise IndexMismatchError(
                f"the index was built with embedder {self.manifest.embedder!r} "
                f"but the configured embedder is {embedder_name!r}",
                hint=f"set QA_EMBEDDER={self.manifest.embedder} (or --embedder), "
                "or rebuild with `qa index --rebuild`",
            )


# ---------------------------------------------------------------- serialisation


def _doc_to_json(doc: Document) -> dict:
    data = asdict(doc)
    data["sections"] = [asdict(s) for s in doc.sections]
    return data


def _doc_from_json(data: dict) -> Document:
    data = dict(data)
    data["sections"] = tuple(Section(**s) for s in data["sections"])
    return Document(**data)


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def share_vectors(matrix: np.ndarray, store: FaissStore) -> np.ndarray:
    """``matrix``, or the bit-identical copy of it that ``store`` already keeps.

    Flat and HNSW stores hold every vector themselves; answering from that copy
    instead of a second one halves the vectors' memory, and the query path (FAISS,
    then exact re-scoring of its candidates) then reads one copy instead of two,
    which keeps more of it in the CPU caches.

    >>> from qa.index.vectors import build_vector_store
    >>> m = np.eye(3, dtype=np.float32)
    >>> shared = share_vectors(m, build_vector_store("flat", m))
    >>> shared is m, bool((shared == m).all())
    (False, True)
    >>> share_vectors(m, build_vector_store("flat", 2 * m)) is m
    True
    """
    stored = store.stored_vectors()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if stored is not None and stored.shape == matrix.shape and np.array_equal(
        stored.view(np.uint32), matrix.view(np.uint32)
    ):
        return stored
    return matrix


def current_version(index_dir: Path) -> Path | None:
    """The live version folder, or None when there is no (complete) index."""
    name = VersionPointer().name(index_dir)
    return None if name is None else Path(index_dir) / name


class VersionPointer:
    """Where CURRENT points, for the query path: one ``stat`` instead of a file read.

    CURRENT is only ever replaced (``os.replace`` of a new file), never rewritten in
    place, so an unchanged (device, inode, size, mtime, ctime) means unchanged
    contents: the file is read again only when that signature changes. The signature
    is taken *before* reading, so a swap between the two is seen on the next call.

    With ``max_age_s`` > 0 an answer is reused for that long without looking at the
    disk (a request asks several times); a writer in the same process calls
    :meth:`forget` after its swap, so only other writers are seen up to
    ``max_age_s`` late. With 0 every call looks (:func:`current_version` is that).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> pointer = VersionPointer()
    >>> pointer.name(root) is None
    True
    >>> (root / "v1").mkdir(); (root / CURRENT).write_text("v1")
    2
    >>> pointer.name(root)
    'v1'
    """

    def __init__(self, max_age_s: float = 0.0) -> None:
        self.max_age_s = max_age_s
        self._seen: tuple[tuple, str] | None = None  # (signature, folder name)
        self._answer: tuple[Path | str, float, str | None] | None = None  # (index_dir, when, name)

    def forget(self) -> None:
        """Look at the disk on the next call (after this process swapped CURRENT)."""
        self._answer = None

    def name(self, index_dir: Path | str) -> str | None:
        """The live version folder's name, or None when there is no (complete) index."""
        if self.max_age_s:
            answer = self._answer
            if answer is not None and answer[0] == index_dir and time.monotonic() - answer[1] < self.max_age_s:
                return answer[2]
        checked_at = time.monotonic()  # before looking: an answer never outlives its check
        name = self._look(index_dir)
        if self.max_age_s:
            self._answer = (index_dir, checked_at, name)
        return name

    def _look(self, index_dir: Path | str) -> str | None:
        pointer = os.path.join(index_dir, CURRENT)
        try:
            st = os.stat(pointer)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        signature = (pointer, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        seen = self._seen
        if seen is not None and seen[0] == signature:
            name = seen[1]
        else:
            try:
                with open(pointer, encoding="utf-8") as fh:
                    name = fh.read().strip()
            except OSError:
                return None
            self._seen = (signature, name)
        return name if os.path.isdir(os.path.join(index_dir, name)) else None


def save_index(data: IndexData, index_dir: Path) -> Path:
    """Write ``data`` as a new version folder and make it live atomically."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"v{time.time_ns()}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        (tmp / "manifest.json").write_text(
            json.dumps(data.manifest.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        _write_jsonl(tmp / "documents.jsonl", (_doc_to_json(d) for d in data.documents.values()))
        _write_jsonl(
            tmp / "chunks.jsonl",
            ({**asdict(c), "tokens": list(t)} for c, t in zip(data.chunks, data.chunk_tokens)),
        )
        _write_jsonl(tmp / "sentences.jsonl", (asdict(s) for s in data.sentences))
        np.save(tmp / "chunk_vectors.npy", data.chunk_vectors)
        np.save(tmp / "sentence_vectors.npy", data.sentence_vectors)
        data.chunk_store.save(tmp / "chunks.faiss")
        data.sentence_store.save(tmp / "sentences.faiss")
        (tmp / "bm25").mkdir()
        data.bm25.save(tmp / "bm25")
        _fsync_tree(tmp)
        tmp.rename(index_dir / name)
        pointer_tmp = index_dir / f".{CURRENT}.tmp"
        pointer_tmp.write_text(name, encoding="utf-8")
        with open(pointer_tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer_tmp, index_dir / CURRENT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(index_dir, keep={name})
    return index_dir / name


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove all but the live version and the one before it, and stale temp folders.

    The previous version is kept so that a reader that resolved CURRENT just before
    the swap can still finish loading it.
    """
    versions = sorted(p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("v"))
    keep = set(keep) | {p.name for p in versions[-2:]}
    for path in index_dir.iterdir():
        if path.is_dir() and path.name not in keep and (path.name.startswith("v") or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


def load_manifest(index_dir: Path) -> Manifest | None:
    folder = current_version(index_dir)
    if folder is None:
        return None
    return Manifest.from_json(json.loads((folder / "manifest.json").read_text(encoding="utf-8")))


def load_index(index_dir: Path) -> IndexData:
    """Load the live version of the index in ``index_dir``."""
    folder = current_version(index_dir)
    if folder is None:
        raise NoIndexError(
            f"no index found in {index_dir}",
            hint="build one with `qa index [FOLDER]` (no folder: the bundled sample corpus)",
        )
    manifest = Manifest.from_json(json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format version {manifest.format_version} in {folder} is not the supported {FORMAT_VERSION}",
            hint="rebuild it with `qa index --rebuild`",
        )
    documents = {d["doc_id"]: _doc_from_json(d) for d in _read_jsonl(folder / "documents.jsonl")}
    chunk_rows = _read_jsonl(folder / "chunks.jsonl")
    tokens = tuple(tuple(row.pop("tokens")) for row in chunk_rows)
    chunks = tuple(Chunk(**row) for row in chunk_rows)
    sentences = tuple(Sentence(**row) for row in _read_jsonl(folder / "sentences.jsonl"))
    chunk_store = FaissStore.load(folder / "chunks.faiss", manifest.vector_index)
    sentence_store = FaissStore.load(folder / "sentences.faiss", manifest.vector_index)
    return IndexData(
        manifest=manifest,
        documents=documents,
        chunks=chunks,
        chunk_tokens=tokens,
        sentences=sentences,
        chunk_vectors=share_vectors(np.load(folder / "chunk_vectors.npy"), chunk_store),
        sentence_vectors=share_vectors(np.load(folder / "sentence_vectors.npy"), sentence_store),
        chunk_store=chunk_store,
        sentence_store=sentence_store,
        bm25=LexicalIndex.load(folder / "bm25", len(chunks)),
        version=folder.name,
    )
