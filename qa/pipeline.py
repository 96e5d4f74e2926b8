"""Wiring only: ingest → chunk/embed → store on write; snapshot → retrieve → answer on read.

The CLI, the HTTP API and the chat UI all call this class and nothing below it, so
a behaviour lives in exactly one stage module and every shell shows the same thing.

Reads run inside one read transaction of the store each (:meth:`Pipeline._reading`),
so a request sees one committed state however many rows it fetches. Writes are
serialised by a lock (and across processes by a lock file in the index folder);
uploads are staged outside the corpus and moved in only once their index write has
committed (:mod:`qa.staging` says how a crash in between is resolved at start-up).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from qa.index.base import DocumentInfo, Snapshot, WriteBatch, open_store
from qa.index.build import BuildReport, build_index
from qa.chunk import ChunkSettings
from qa.embed import Embedder, get_embedder
from qa.errors import Conflict, EmptyCorpusError, IndexMismatchError, InputError, NotFoundError
from qa.ingest import SUPPORTED_SUFFIXES, content_hash, iter_corpus_files
from qa.retrieve import Retriever
from qa.settings import SAMPLE_CORPUS, Settings
from qa.staging import Staging
from qa.types import Answer, Document, Filters, Hit, Turn
from qa.uploads import check_readable, safe_filename


@dataclass(frozen=True)
class _Live:
    """The snapshot a reader uses, and the retriever over it, swapped as one reference."""

    snapshot: Snapshot
    retriever: Retriever


def seed_corpus(settings: Settings) -> Path:
    """The folder ``qa index`` uses without a PATH.

    When that is the bundled sample, it is first copied to a working folder next to
    the index so that uploads and deletions never touch the repository's copy.
    """
    if Path(settings.corpus_dir).resolve() != SAMPLE_CORPUS.resolve():
        return Path(settings.corpus_dir)
    working = Path(settings.index_dir).parent / "corpus"
    if not working.exists():
        tmp = working.with_name(working.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(SAMPLE_CORPUS, tmp)
        os.replace(tmp, working)
    return working


class Pipeline:
    """One corpus, one store, one embedder."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None, store=None):
        self.settings = settings or Settings()
        self._embedder = embedder
        self.store = store if store is not None else open_store(self.settings.store, self.settings)
        self._live: _Live | None = None
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._recovered = False
        self._chat = None  # the LLM client, made on first use (qa.llm)

    # ------------------------------------------------------------------ plumbing

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings.embedder)
        return self._embedder

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    def _chunking(self) -> ChunkSettings:
        return ChunkSettings(self.settings.chunk_size, self.settings.chunk_overlap)

    def corpus_dir(self) -> Path:
        """The folder the live index was built from (uploads are written there)."""
        folder = self.store.corpus_dir()
        # An index of the repository's own sample folder: write to the working copy
        # instead (documents are matched by hash, so nothing is re-embedded).
        if folder and Path(folder).resolve() != SAMPLE_CORPUS.resolve():
            return Path(folder)
        return seed_corpus(self.settings)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with self._write_lock, open(self.index_dir / ".write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not self._recovered:
                    self._recover_locked()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _reading(self) -> Iterator[_Live]:
        """The live snapshot and its retriever, inside one read transaction."""
        with self.store.reading():
            snapshot = self.store.snapshot()
            live = self._live
            if live is None or live.snapshot is not snapshot:
                with self._read_lock:
                    live = self._live
                    if live is None or live.snapshot is not snapshot:
                        live = _Live(snapshot, Retriever(snapshot, self.embedder, self.settings.fusion,
                                                         self.settings.max_question_chars,
                                                         self.settings.lexical_depth))
                        self._live = live
            yield live

    def warm_up(self) -> None:
        """Load what the first request would otherwise wait for: the index, the model,
        jieba's dictionary, and the chunker (the first upload's text splitter)."""
        self.search("预热 warm-up", k=1)
        from qa.chunk import chunk_document
        from qa.types import Document

        chunk_document(Document("warm-up.txt", "预热。\n", "预热", None, None, None, (), ""), self._chunking())

    def loaded(self) -> bool:
        return self._live is not None

    # ------------------------------------------------------------------ writes

    def recover(self) -> None:
        """Finish or undo what a crash cut off (staged uploads and deletions), and
        remove files no committed state names. Runs before the first write anyway."""
        with self._writing():
            pass

    def _recover_locked(self) -> None:
        try:
            if self.store.index_settings() is not None:
                self.store.cleanup(background=True)
                root = self.corpus_dir()
                self._match_corpus(root, Staging(root).recover())
            self.store.cleanup(background=True)
        except IndexMismatchError:
            return  # an index of the old format: only `qa index --rebuild` may touch it
        self._recovered = True

    def _match_corpus(self, root: Path, names: list[str]) -> None:
        """Make these documents' index entries match the corpus folder (after a crash
        cut their writes off): re-index the file that is there, or remove the entry."""
        stamps = self.store.stamps()
        for name in names:
            path = root / name
            if path.is_file():
                if stamps.get(name) is None or stamps[name].content_hash != content_hash(path.read_bytes()):
                    build_index(root, self.store, self.embedder, self._chunking(),
                                batch_size=self.settings.batch_size, only=[(path, name)])
            elif name in stamps:
                self.store.write([WriteBatch(deletes=(name,))], self.store.index_settings())

    def index(
        self,
        path: Path | None = None,
        rebuild: bool = False,
        warn: Callable[[str], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BuildReport:
        """Build or update the index from ``path`` (default: the configured corpus)."""
        root = Path(path) if path is not None else seed_corpus(self.settings)
        if not root.exists():
            raise NotFoundError(f"folder {root} does not exist", hint="pass an existing folder of documents")
        if not root.is_dir():
            raise InputError(f"{root} is a file, not a folder", hint="pass the folder that contains it")
        if not iter_corpus_files(root):
            raise EmptyCorpusError(f"no readable document in {root}",
                                   hint=f"add files of these types: {', '.join(SUPPORTED_SUFFIXES)}")
        with self._writing():
            if rebuild:
                self.store.clear()
                self._live = None
                self._recover_locked()
            report = build_index(root, self.store, self.embedder, self._chunking(),
                                 batch_docs=self.settings.batch_docs, batch_size=self.settings.batch_size,
                                 warn=warn, progress=progress)
            if not report.is_noop:
                t = time.perf_counter()
                self.store.maintain(bulk=True)
                report.timings_s["merge"] = time.perf_counter() - t
            return self._with_totals(report, root)

    def _with_totals(self, report: BuildReport, root: Path) -> BuildReport:
        with self.store.reading():
            if self.store.index_settings() is None:
                raise EmptyCorpusError(f"no readable document in {root}",
                                       hint="; ".join(report.skipped) or "add text, HTML, PDF or DOCX files")
            snapshot = self.store.snapshot()
            if not snapshot.n_chunks and not snapshot.documents():
                raise EmptyCorpusError(f"no readable document in {root}",
                                       hint="; ".join(report.skipped) or "add text, HTML, PDF or DOCX files")
            return replace(report, chunks=snapshot.n_chunks, sentences=snapshot.n_sentences)

    def add_document(self, filename: str, content: bytes, replace_existing: bool = True) -> tuple[str, BuildReport]:
        """Index an uploaded file and store it in the corpus folder, as one write.

        The bytes are staged outside the corpus; the file appears in the corpus folder
        only after the index write that holds it has committed.
        """
        name = safe_filename(filename)
        if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"file type {Path(name).suffix or '(none)'!r} of {name!r} is not supported",
                hint=f"upload one of: {', '.join(SUPPORTED_SUFFIXES)}",
            )
        check_readable(name, content)
        with self._writing():
            root = self.corpus_dir()
            target = (root / name).resolve()
            if target.parent != root.resolve():  # belt and braces: never write outside the corpus
                raise InputError(f"refusing to write {name!r} outside the corpus folder")
            known = self.store.stamps()
            if not replace_existing and (name in known or target.exists()):
                raise Conflict(f"a document named {name!r} is already indexed",
                               hint="pass ?replace=true to overwrite it, or upload it under another name")
            staging = Staging(root)
            with staging.upload(name, content) as staged:
                report = build_index(root, self.store, self.embedder, self._chunking(),
                                     batch_size=self.settings.batch_size, only=[(staged, name)])
                if report.skipped:
                    raise InputError(f"{name} cannot be indexed: {report.skipped[0]}",
                                     hint="upload a text, HTML, PDF or DOCX file with text in it")
            self._merge_small_segments(report)
            return name, self._with_totals(report, root)

    def delete_document(self, doc_id: str) -> BuildReport:
        with self._writing():
            if doc_id not in self.store.stamps():
                raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with GET /v1/documents")
            root = self.corpus_dir()
            target = (root / doc_id).resolve()
            if root.resolve() not in target.parents:
                raise InputError(f"document id {doc_id!r} points outside the corpus folder")
            with Staging(root).delete(doc_id):
                self.store.write([WriteBatch(deletes=(doc_id,))], self.store.index_settings())
            report = BuildReport((), (), (doc_id,), (), 0, 0, 0)
            self._merge_small_segments(report)
            return self._with_totals(report, root)

    def _merge_small_segments(self, report: BuildReport) -> None:
        # Each upload adds a segment; merging by size class keeps their number
        # logarithmic. Most writes find nothing to merge; one in eight merges eight
        # small segments (milliseconds), one in 64 eight of the next class, and so on.
        t = time.perf_counter()
        self.store.maintain()
        report.timings_s["merge"] = time.perf_counter() - t

    def maintain(self) -> None:
        """Merge small segments (after writes; slow at most once per size class)."""
        with self._writing():
            self.store.maintain()

    # ------------------------------------------------------------------ reads

    def documents(self) -> list[DocumentInfo]:
        with self._reading() as live:
            return list(live.snapshot.documents())

    def document(self, doc_id: str) -> Document:
        with self._reading() as live:
            doc = live.snapshot.document(doc_id)
        if doc is None:
            raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with `qa documents`")
        return doc

    def retriever(self) -> Retriever:
        """The retriever over the live index (used by calibration and evaluation)."""
        with self._reading() as live:
            return live.retriever

    def chunk_counts(self) -> dict[str, int]:
        return {d.doc_id: d.chunks for d in self.documents()}

    def search(
        self, query: str, k: int | None = None, mode: str | None = None, filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The best passages; ``query_vector`` (from :meth:`query_vector`) skips the embedding."""
        with self._reading() as live:
            return live.retriever.search(
                query, k=self.settings.k if k is None else k, mode=mode or self.settings.mode, filters=filters,
                query_vector=query_vector,
            )

    def search_is_light(self) -> bool:
        """True when the live snapshot is small enough that a search, once the query is
        embedded, is a few hundred microseconds of CPU: a server can then run that
        part on its event loop (no hand-over to a thread) without stalling it."""
        live = self._live
        return live is not None and live.retriever.light

    def query_vector(self, query: str) -> np.ndarray:
        """The embedding of ``query`` that :meth:`search` would compute: the model call
        (or query-cache lookup), split off so a server can run it on a worker thread
        and the cheap rest of the search where it likes."""
        with self._reading() as live:
            return live.retriever.question_vector(query)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        from qa.answer import answer_question

        if self.settings.llm_url:  # a generated answer, verified (qa/generate.py)
            from qa.generate import final_answer

            return final_answer(self.ask_stream(question, history, k, filters))
        with self._reading() as live:
            return answer_question(
                question,
                live.retriever,
                history=history,
                k=self.settings.k if k is None else k,
                filters=filters,
                settings=self.settings,
            )

    @property
    def chat_model(self):
        """The LLM that writes answers (``settings.llm_url``), or None: extractive only."""
        if self._chat is None and self.settings.llm_url:
            from qa.llm import chat_model_from_settings

            self._chat = chat_model_from_settings(self.settings)
        return self._chat

    def generating(self) -> bool:
        return bool(self.settings.llm_url)

    def ask_stream(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                   filters: Filters | None = None):
        """A generated answer as events (qa.generate.Delta…, then qa.generate.Final):
        retrieval and the refusal decision run now (bad input raises here); the LLM is
        called as the returned iterator is consumed. Without ``llm_url`` the events
        are the extractive answer's sentences."""
        from qa.generate import Generation, start

        with self._reading() as live:
            generation: Generation = start(question, live.retriever, self.chat_model or _NoChat(),
                                           history=history, k=self.settings.k if k is None else k,
                                           filters=filters, settings=self.settings)
        if self.chat_model is None:
            generation.outcome.asked = False
        return generation.events()


class _NoChat:
    """Stands in when no LLM is configured; never called (the events are extractive)."""

    name = "extractive"
