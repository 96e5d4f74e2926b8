"""Wiring only: ingest → chunk/embed/index on write; load → retrieve → answer on read.

The CLI, the HTTP API and the chat UI all call this class and nothing below it, so
a behaviour lives in exactly one stage module and every shell shows the same thing.

Readers and writers can share one ``Pipeline``: a write builds a complete new index
beside the live one and swaps a single reference when it is done, so a concurrent
reader sees the old index or the new one, never a mix. Writes are serialised by a
lock (and across processes by a lock file in the index folder).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from qa.index.build import BuildReport, build_index
from qa.index.store import IndexData, VersionPointer, current_version, load_index, save_index
from qa.chunk import ChunkSettings
from qa.embed import Embedder, get_embedder
from qa.errors import EmptyCorpusError, InputError, NoIndexError, NotFoundError
from qa.ingest import SUPPORTED_SUFFIXES, load_folder
from qa.retrieve import Retriever
from qa.settings import SAMPLE_CORPUS, Settings
from qa.types import Answer, Document, Filters, Hit, Turn


@dataclass(frozen=True)
class _Live:
    """The index a reader uses, and the retriever over it, swapped as one reference."""

    data: IndexData
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


_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def safe_filename(name: str) -> str:
    """A plain file name from an uploaded one: no folders, no leading dots.

    >>> safe_filename("../../etc/passwd"), safe_filename("C:\\\\docs\\\\宜昌 报告.txt")
    ('passwd', '宜昌_报告.txt')
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = _SAFE_NAME.sub("_", base).strip("._ ")
    if not base:
        raise InputError(f"unusable file name {name!r}", hint="upload a file with a name such as report.txt")
    return base[:120]


class Pipeline:
    """One corpus, one index folder, one embedder."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None):
        self.settings = settings or Settings()
        self._embedder = embedder
        self._live: _Live | None = None
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        # CURRENT, re-read only when it changes and looked at no more than once a
        # millisecond (a request asks several times); this pipeline's own writes are
        # seen at once, another process's within that millisecond.
        self._pointer = VersionPointer(max_age_s=0.001)
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

    def corpus_dir(self) -> Path:
        """The folder the live index was built from (uploads are written there)."""
        view = self._current(required=False)
        if view is not None and view.data.manifest.corpus_dir:
            folder = Path(view.data.manifest.corpus_dir)
            # An index of the repository's own sample folder: write to the working
            # copy instead (documents are matched by hash, so nothing is re-embedded).
            if folder.resolve() != SAMPLE_CORPUS.resolve():
                return folder
        return seed_corpus(self.settings)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with self._write_lock, open(self.index_dir / ".write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _current(self, required: bool = True) -> "_LiveView | None":
        live = self._live
        name = self._pointer.name(self.settings.index_dir)
        if name is None:
            if required:
                raise NoIndexError(
                    f"no index found in {self.index_dir}",
                    hint="build one with `qa index [FOLDER]` (no folder: the bundled sample corpus)",
                )
            return None
        if live is None or live.data.version != name:
            with self._read_lock:
                live = self._live
                if live is None or live.data.version != name:
                    data = load_index(self.index_dir)
                    live = _Live(data, Retriever(data, self.embedder, self.settings.fusion))
                    self._live = live
        return _LiveView(live)

    def loaded(self) -> bool:
        return self._live is not None

    # ------------------------------------------------------------------ writes

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
        with self._writing():
            result = load_folder(root, warn=warn)
            if not result.documents:
                raise EmptyCorpusError(
                    f"no readable document in {root}",
                    hint=f"add files of these types: {', '.join(SUPPORTED_SUFFIXES)}",
                )
            previous = None
            if not rebuild:
                try:
                    previous = load_index(self.index_dir)
                except NoIndexError:
                    previous = None
            data, report = build_index(
                result.documents,
                self.embedder,
                ChunkSettings(self.settings.chunk_size, self.settings.chunk_overlap),
                vector_index=self.settings.vector_index,
                previous=previous,
                batch_size=self.settings.batch_size,
                progress=progress,
                corpus_dir=str(root.resolve()),
            )
            if data is not None:
                t = time.perf_counter()
                save_index(data, self.index_dir)
                self._pointer.forget()
                report.timings_s["write"] = time.perf_counter() - t
                data = data_with_version(data, self.index_dir)
                self._live = _Live(data, Retriever(data, self.embedder, self.settings.fusion))
            return report

    def add_document(self, filename: str, content: bytes) -> tuple[str, BuildReport]:
        """Store an uploaded file in the corpus folder and index it incrementally."""
        name = safe_filename(filename)
        if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"file type {Path(name).suffix or '(none)'!r} of {name!r} is not supported",
                hint=f"upload one of: {', '.join(SUPPORTED_SUFFIXES)}",
            )
        root = self.corpus_dir()
        target = (root / name).resolve()
        if target.parent != root.resolve():  # belt and braces: never write outside the corpus
            raise InputError(f"refusing to write {name!r} outside the corpus folder")
        _check_readable(name, content)
        tmp = root / f".{name}.upload"
        tmp.write_bytes(content)
        os.replace(tmp, target)
        report = self.index(root)
        return name, report

    def delete_document(self, doc_id: str) -> BuildReport:
        data = self._current().data
        if doc_id not in data.documents:
            raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with GET /v1/documents")
        root = self.corpus_dir()
        target = (root / doc_id).resolve()
        if root.resolve() not in target.parents:
            raise InputError(f"document id {doc_id!r} points outside the corpus folder")
        if target.exists():
            target.unlink()
        return self.index(root)

    # ------------------------------------------------------------------ reads

    def documents(self) -> list[Document]:
        return list(self._current().data.documents.values())

    def document(self, doc_id: str) -> Document:
        docs = self._current().data.documents
        if doc_id not in docs:
            raise NotFoundError(f"no document {doc_id!r} in the index", hint="list them with `qa documents`")
        return docs[doc_id]

    def retriever(self) -> Retriever:
        """The retriever over the live index (used by calibration and evaluation)."""
        return self._current().retriever

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk in self._current().data.chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        return counts

    def search(
        self, query: str, k: int | None = None, mode: str | None = None, filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The best passages; ``query_vector`` (from :meth:`query_vector`) skips the embedding."""
        return self._current().retriever.search(
            query, k=self.settings.k if k is None else k, mode=mode or self.settings.mode, filters=filters,
            query_vector=query_vector,
        )

    def search_is_light(self) -> bool:
        """True when the loaded index is the live one and small enough that a search,
        once the query is embedded, is a few hundred microseconds of CPU: a server can
        then run that part on its event loop (no hand-over to a thread) without
        stalling it. False when nothing is loaded or a newer version awaits loading.
        """
        live = self._live
        return (live is not None and live.retriever.light
                and self._pointer.name(self.settings.index_dir) == live.data.version)

    def query_vector(self, query: str) -> np.ndarray:
        """The embedding of ``query`` that :meth:`search` would compute: the model call
        (or query-cache lookup), split off so a server can run it on a worker thread
        and the cheap rest of the search where it likes."""
        return self._current().retriever.question_vector(query)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        from qa.answer import answer_question

        live = self._current()
        if self.settings.llm_url:  # a generated answer, verified (qa/generate.py)
            from qa.generate import final_answer

            return final_answer(self.ask_stream(question, history, k, filters))
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

        live = self._current()
        generation: Generation = start(question, live.retriever, self.chat_model or _NoChat(), history=history,
                                       k=self.settings.k if k is None else k, filters=filters, settings=self.settings)
        if self.chat_model is None:
            generation.outcome.asked = False
        return generation.events()


class _NoChat:
    """Stands in when no LLM is configured; never called (the events are extractive)."""

    name = "extractive"


class _LiveView:
    """Read-only handle on one live index; taken once per request."""

    def __init__(self, live: _Live):
        self.data = live.data
        self.retriever = live.retriever


def data_with_version(data: IndexData, index_dir: Path) -> IndexData:
    folder = current_version(index_dir)
    from dataclasses import replace

    return replace(data, version=folder.name if folder else "")


def _check_readable(name: str, content: bytes) -> None:
    """Reject an upload that ingestion could not read, before it reaches the corpus."""
    import tempfile

    from qa.errors import IngestError
    from qa.ingest import read_text

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            read_text(path)
        except IngestError as exc:
            raise InputError(f"{name} cannot be indexed: {exc.message}", hint="upload a text, HTML, PDF or DOCX file with text in it") from exc
