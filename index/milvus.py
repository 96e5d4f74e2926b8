"""The Milvus store: the same rows, vectors and BM25 as the local store, kept in Milvus.

One URI picks the deployment: a file ending in ``.db`` is Milvus Lite embedded in the
process (``./qa-milvus.db``), ``http://host:19530`` a standalone server or a cluster
(with ``--milvus-token user:password``). Everything a reader needs lives in Milvus,
so any number of stateless ``qa serve`` replicas can read one corpus.

Collections (prefix ``qa_``; the README's "Milvus" section has the full schema):

* ``qa_meta``       one row, ``state``: committed generation, embedder, chunker, counts
* ``qa_documents``  one row per document version (primary key ``doc_key``): doc_id,
                    content hash, file stamp, metadata (JSON) and the generations in
                    which it is live: ``gen_from <= G < gen_to``
* ``qa_texts``      the document texts in parts of at most 16,000 characters (a
                    VARCHAR holds 65,535 bytes; 16,000 characters of up to 4 bytes fit)
* ``qa_chunks``     chunk rows: offsets, texts, the project's BM25 tokens, the dense
                    vector and two BM25 sparse fields computed by Milvus (one on the
                    project's tokens, one on the folded text with the jieba analyzer)
* ``qa_sentences``  sentence rows: offsets, texts, owner chunks, the dense vector
* ``qa_terms``      (doc_key, term, df) rows: document frequencies for the answer stage

Ids are ``doc_key << 24 | ordinal``: a document version gets a fresh random 39-bit key
when it is written, so an id always means the same row (rows are cached by id) and a
replaced document's old and new rows never share an id.

Atomic writes without transactions: a write inserts its documents' rows under new
keys with ``gen_from = G + 1`` (invisible: readers only take rows of documents live at
the committed generation ``G``), marks replaced and deleted versions ``gen_to = G + 1``,
and commits by upserting the ``state`` row with ``G + 1``. Only then are the retired
versions' rows deleted by filter. A crash before the commit leaves rows that no
committed generation names; :meth:`MilvusStore.cleanup` deletes them.

>>> split_text("abcdefg", 3)
['abc', 'def', 'g']
>>> row_id(5, 2) == (5 << 24) | 2, key_of(row_id(5, 2)), ordinal_of(row_id(5, 2))
(True, 5, 2)
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import warnings
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from qa.errors import IndexMismatchError, StoreUnavailableError
from qa.index.base import (
    DocumentInfo,
    DocumentRows,
    FileStamp,
    IndexSettings,
    Scope,
    TermStats,
    WriteBatch,
    iter_batches,
)
from qa.index.bm25 import K1 as BM25_K1, B as BM25_B
from qa.types import Chunk, Document, Section, Sentence

SCHEMA_VERSION = 1
PREFIX = "qa_"
ORDINAL_BITS = 24  # up to 16.7M chunks or sentences per document
KEY_BITS = 39  # ids stay below 2**63
FOREVER = 2**62  # gen_to of a live document version
TEXT_PART = 16_000  # characters per stored text part: ≤ 64,000 bytes in UTF-8
VARCHAR_MAX = 65_535  # bytes, Milvus's limit for one VARCHAR value
SEARCH_LIMIT = 16_384  # Milvus's largest topk
ID_BATCH = 1000  # ids per `id in [...]` filter (filtered searches stay ~5 ms at this size)
FETCH_BATCH = 200  # rows per query by id: query latency grows faster than linearly beyond this
# A replica asks Milvus whether another process committed at most this often; its own
# writes are seen at once. 0.25 s keeps the check (one primary-key query, ~1 ms) off
# nearly every request of a busy server while an upload elsewhere shows up "at once"
# for a person.
STATE_MAX_AGE_S = 0.25
# Up to this many (document, term) rows, a snapshot reads every df at its first
# question instead of one query per term: the sample corpus's 10,600 rows take 0.24 s
# (measured) once per committed write, against ~2 ms a term for the dozens of English
# senses one question can look up. Beyond it (a large corpus) terms are read on demand.
PRELOAD_TERM_ROWS = 50_000
BM25_MODES = ("project", "jieba")
VECTOR_INDEXES = {  # --milvus-index → (index_type, build params, search params)
    "flat": ("FLAT", {}, {}),
    "autoindex": ("AUTOINDEX", {}, {}),
    "ivf": ("IVF_FLAT", {"nlist": 1024}, {"nprobe": 16}),
    "hnsw": ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 128}),
}
CONSISTENCY = "Strong"  # see the README: a reader must see every row a committed state names


def row_id(doc_key: int, ordinal: int) -> int:
    return (int(doc_key) << ORDINAL_BITS) | int(ordinal)


def key_of(row: int) -> int:
    return int(row) >> ORDINAL_BITS


def ordinal_of(row: int) -> int:
    return int(row) & ((1 << ORDINAL_BITS) - 1)


def split_text(text: str, size: int = TEXT_PART) -> list[str]:
    """``text`` in parts of ``size`` characters (one empty part for an empty text)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def fits(value: str) -> bool:
    """Whether ``value`` fits one Milvus VARCHAR (65,535 bytes of UTF-8).

    >>> fits("宜" * 21845), fits("宜" * 21846)
    (True, False)
    """
    return len(value) * 4 <= VARCHAR_MAX or len(value.encode("utf-8")) <= VARCHAR_MAX


def clip(value: str) -> str:
    """The longest prefix of ``value`` that fits a VARCHAR (whole characters).

    >>> len(clip("宜" * 30000))
    21845
    """
    if fits(value):
        return value
    return value.encode("utf-8")[:VARCHAR_MAX].decode("utf-8", errors="ignore")


def encode_ordinals(values: Sequence[int]) -> str:
    """Sorted ordinals as compact ranges (VARCHAR output is far cheaper than ARRAY).

    >>> encode_ordinals([3, 4, 5, 9]), decode_ordinals("3-5,9"), decode_ordinals("")
    ('3-5,9', [3, 4, 5, 9], [])
    """
    parts: list[str] = []
    values = sorted(int(v) for v in values)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(parts)


def decode_ordinals(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(",") if text else ():
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def int_list(values: Iterable[int]) -> str:
    """A Milvus expression list of integers.

    >>> int_list([3, 1])
    '[3,1]'
    """
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def str_literal(value: str) -> str:
    """A Milvus expression string literal (double quotes, backslash escapes).

    >>> str_literal('a"b')
    '"a\\\\"b"'
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_many(self, keys: Iterable) -> dict:
        with self.lock:
            out = {}
            for k in keys:
                if k in self:
                    self.move_to_end(k)
                    out[k] = OrderedDict.__getitem__(self, k)
            return out

    def put(self, key, value):
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)
        return value


def _quiet_pymilvus() -> None:
    # pymilvus logs every failed RPC with a traceback at ERROR level; the store turns
    # each failure into one StoreUnavailableError, so those logs would only repeat it.
    # pymilvus configures its loggers when imported: import it first, then quiet them.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    # gRPC's C core prints keepalive notices ("too_many_pings") on an idle channel, e.g.
    # while a long build embeds; the client reconnects by itself, so they are noise.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        return
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect_hint(uri: str) -> str:
    if uri.endswith(".db"):
        return ("an embedded Milvus Lite file can be opened by one process at a time: stop the other "
                "process (a running `qa serve`?), or serve the file with `python -m qa.index.milvus serve "
                f"{uri} --port 19530` and pass --milvus-uri http://127.0.0.1:19530 to every process; "
                "install it with pip install 'qa-gov[milvus]' if it is missing")
    return ("check that Milvus is running and reachable at that address, and the token "
            "(--milvus-token / QA_MILVUS_TOKEN, user:password); or pass --milvus-uri ./qa-milvus.db "
            "for an embedded Milvus Lite file")


def connect(uri: str, token: str | None = None, timeout: float = 10.0):
    """A MilvusClient for ``uri``, or one StoreUnavailableError saying what failed."""
    _quiet_pymilvus()
    if not uri:
        raise StoreUnavailableError("no Milvus URI is configured",
                                    hint="pass --milvus-uri ./qa-milvus.db or http://host:19530 (QA_MILVUS_URI)")
    if uri.endswith(".db"):
        folder = Path(uri).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreUnavailableError(f"cannot open Milvus Lite file {uri}: folder {folder} does not exist",
                                        hint="create the folder or pass another path ending in .db")
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as exc:  # the extra is not installed
        raise StoreUnavailableError(f"the milvus store needs pymilvus ({exc})",
                                    hint="pip install 'qa-gov[milvus]'") from exc
    try:
        return MilvusClient(uri=uri, token=token or "", timeout=timeout)
    except MilvusException as exc:
        raise StoreUnavailableError(f"cannot connect to Milvus at {uri}: {exc.message}",
                                    hint=connect_hint(uri)) from exc
    except (OSError, RuntimeError) as exc:  # milvus-lite's launcher reports with these
        raise StoreUnavailableError(f"cannot start Milvus Lite for {uri}: {exc}", hint=connect_hint(uri)) from exc


def _dummy() -> list[float]:
    # Milvus requires a vector field in every collection; the bookkeeping ones carry this.
    return [0.0, 0.0]


class MilvusStore:
    """The :class:`qa.index.base.Store` on Milvus (Lite, standalone or cluster)."""

    def __init__(self, uri: str, token: str | None = None, bm25: str = "project", vector_index: str = "flat"):
        if bm25 not in BM25_MODES:
            from qa.errors import ConfigError

            raise ConfigError(f"unknown milvus_bm25 {bm25!r}", hint=f"choose one of: {', '.join(BM25_MODES)}")
        if vector_index not in VECTOR_INDEXES:
            from qa.errors import ConfigError

            raise ConfigError(f"unknown milvus_index {vector_index!r}",
                              hint=f"choose one of: {', '.join(VECTOR_INDEXES)}")
        self.uri = uri
        self.bm25 = bm25
        self.vector_index = vector_index
        self._client = connect(uri, token)
        from pymilvus.exceptions import MilvusException

        self._errors = (MilvusException,)
        self._snapshot: MilvusSnapshot | None = None
        self._checked_at = 0.0
        self._snap_lock = threading.Lock()
        self.chunk_rows = _LRU(50_000)  # id → (Chunk, sentence ordinals); ids never change meaning
        self.sentence_rows = _LRU(100_000)  # id → (Sentence, owner chunk ordinals)
        self.vectors = _LRU(20_000)  # ("s"|"c", id) → vector
        self.texts = _LRU(64)  # doc_key → text

    @classmethod
    def from_settings(cls, settings) -> "MilvusStore":
        uri = settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
        if uri.endswith(".db"):
            Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        return cls(uri, settings.milvus_token, settings.milvus_bm25, settings.milvus_index)

    # ------------------------------------------------------------------ plumbing

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)``; a Milvus failure becomes one StoreUnavailableError."""
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            message = str(getattr(exc, "message", exc))
            unreachable = getattr(exc, "code", None) in (2, 503) or "unavailable" in message.lower()
            raise StoreUnavailableError(
                f"Milvus at {self.uri}: {what} failed: {message}",
                hint=connect_hint(self.uri) if unreachable else
                "the server refused the operation: check its log; collections made by another version "
                "of qa-gov need `qa index --rebuild`") from exc

    def name(self, kind: str) -> str:
        return PREFIX + kind

    def _exists(self) -> bool:
        return bool(self.call("listing collections", self._client.has_collection, self.name("meta")))

    def query(self, kind: str, what: str, **kwargs) -> list[dict]:
        return list(self.call(what, self._client.query, self.name(kind), **kwargs))

    def search(self, kind: str, what: str, **kwargs) -> list[dict]:
        return list(self.call(what, self._client.search, self.name(kind), **kwargs)[0])

    def scan(self, kind: str, what: str, filter: str, fields: list[str]) -> list[dict]:
        """Every row matching ``filter``, however many (a plain query stops at 16,384)."""
        iterator = self.call(what, self._client.query_iterator, self.name(kind), batch_size=10_000, filter=filter,
                             output_fields=fields)
        rows: list[dict] = []
        while True:
            batch = self.call(what, iterator.next)
            if not batch:
                iterator.close()
                return rows
            rows += batch

    def fetch(self, kind: str, ids: Sequence[int], fields: list[str], what: str) -> list[dict]:
        rows: list[dict] = []
        for part in iter_batches(list(ids), FETCH_BATCH):
            rows += self.query(kind, what, filter=f"id in {int_list(part)}", output_fields=["id", *fields])
        return rows

    # ------------------------------------------------------------------ schema

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        client = self._client

        def make(kind: str, fields: list[tuple], vectors: list[tuple[str, int]], functions=(), sparse=()):
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            for name, dtype, extra in fields:
                schema.add_field(name, dtype, **extra)
            for name, size in vectors:
                schema.add_field(name, DataType.FLOAT_VECTOR, dim=size)
            for name in sparse:
                schema.add_field(name, DataType.SPARSE_FLOAT_VECTOR)
            for fn_name, source, target in functions:
                schema.add_function(Function(name=fn_name, function_type=FunctionType.BM25,
                                             input_field_names=[source], output_field_names=[target]))
            params = client.prepare_index_params()
            for name, size in vectors:
                if size == 2:
                    params.add_index(name, index_type="FLAT", metric_type="L2")
                else:
                    kind_, build, _ = VECTOR_INDEXES[self.vector_index]
                    params.add_index(name, index_type=kind_, metric_type="IP", params=build)
            for name in sparse:
                params.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                                 params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
            self.call(f"creating collection {self.name(kind)}", client.create_collection, self.name(kind),
                      schema=schema, index_params=params, consistency_level=CONSISTENCY)

        big = {"max_length": VARCHAR_MAX}
        i64 = (DataType.INT64, {})
        make("documents", [("doc_key", DataType.INT64, {"is_primary": True}),
                           ("doc_id", DataType.VARCHAR, {"max_length": 4096}),
                           ("content_hash", DataType.VARCHAR, {"max_length": 256}),
                           ("info", DataType.JSON, {}),
                           ("n_chunks", *i64), ("n_sentences", *i64), ("n_parts", *i64),
                           ("size", *i64), ("mtime_ns", *i64), ("gen_from", *i64), ("gen_to", *i64)],
             [("_v", 2)])
        make("texts", [("id", DataType.INT64, {"is_primary": True}), ("doc_key", *i64),
                       ("text", DataType.VARCHAR, big)], [("_v", 2)])
        make("chunks", [("id", DataType.INT64, {"is_primary": True}), ("doc_key", *i64),
                        ("start", *i64), ("end", *i64),
                        ("text", DataType.VARCHAR, big), ("section", DataType.VARCHAR, big),
                        ("context", DataType.VARCHAR, big),
                        ("search_text", DataType.VARCHAR,
                         {**big, "enable_analyzer": True, "analyzer_params": {"tokenizer": "jieba"}}),
                        ("tokens", DataType.VARCHAR,
                         {**big, "enable_analyzer": True, "analyzer_params": {"tokenizer": "whitespace"}}),
                        ("sentences", DataType.VARCHAR, big)],
             [("dense", dim)], functions=[("bm25_project", "tokens", "bm25_project"),
                                          ("bm25_jieba", "search_text", "bm25_jieba")],
             sparse=["bm25_project", "bm25_jieba"])
        make("sentences", [("id", DataType.INT64, {"is_primary": True}), ("doc_key", *i64),
                           ("start", *i64), ("end", *i64),
                           ("text", DataType.VARCHAR, big), ("search_text", DataType.VARCHAR, big),
                           ("owners", DataType.VARCHAR, big)], [("dense", dim)])
        make("terms", [("id", DataType.VARCHAR, {"is_primary": True, "max_length": 1024}), ("doc_key", *i64),
                       ("term", DataType.VARCHAR, {"max_length": 512}), ("df", *i64)], [("_v", 2)])
        # The state row last: its collection's presence means the others exist.
        make("meta", [("id", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
                      ("value", DataType.JSON, {})], [("_v", 2)])

    # ------------------------------------------------------------------ state

    def state(self) -> dict | None:
        """The committed state row, or None for an empty store."""
        if not self._exists():
            return None
        rows = self.query("meta", "reading the index state", filter='id == "state"', output_fields=["value"])
        return rows[0]["value"] if rows else None

    def _put_state(self, state: dict) -> None:
        self.call("committing the write", self._client.upsert, self.name("meta"),
                  [{"id": "state", "value": state, "_v": _dummy()}])

    def reading(self):
        # No read transactions in Milvus: a snapshot reads the rows of the document
        # versions live at its generation, which a write never changes (see the module doc).
        return nullcontext()

    def corpus_dir(self) -> str:
        state = self.state()
        return "" if state is None else state.get("corpus_dir", "")

    def index_settings(self) -> IndexSettings | None:
        state = self.state()
        return None if state is None else _settings_of(state)

    def _live_rows(self, generation: int, fields: list[str], extra: str = "") -> list[dict]:
        flt = f"gen_from <= {generation} and gen_to > {generation}" + (f" and ({extra})" if extra else "")
        return self.scan("documents", "listing documents", flt, fields)

    def stamps(self) -> dict[str, FileStamp]:
        state = self.state()
        if state is None:
            return {}
        rows = self._live_rows(state["generation"], ["doc_id", "content_hash", "size", "mtime_ns"])
        return {r["doc_id"]: FileStamp(r["doc_id"], r["content_hash"], int(r["size"]), int(r["mtime_ns"]))
                for r in rows}

    def snapshot(self) -> "MilvusSnapshot":
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and now - self._checked_at < STATE_MAX_AGE_S:
            return snap
        with self._snap_lock:
            state = self.state()
            if state is None:
                from qa.errors import NoIndexError

                raise NoIndexError(f"no index in Milvus at {self.uri}",
                                   hint="build one with `qa index --store milvus [FOLDER]`")
            snap = self._snapshot
            if snap is None or snap.generation != state["generation"]:
                snap = MilvusSnapshot(self, state)
                self._snapshot = snap
            self._checked_at = time.monotonic()
            return snap

    # ------------------------------------------------------------------ writes

    def write(self, batches: Iterable[WriteBatch], settings: IndexSettings) -> None:
        state = self.state()
        if state is None:
            # No committed state: whatever collections exist are a cut-off first write's.
            self.clear()
            self._create(settings.dim)
            state = {"schema": SCHEMA_VERSION, "generation": 0, "embedder": settings.embedder,
                     "dim": settings.dim, "chunk_size": settings.chunk_size,
                     "chunk_overlap": settings.chunk_overlap, "corpus_dir": "", "n_chunks": 0, "n_sentences": 0}
        else:
            _check_settings(state, settings, self.uri)
        generation = int(state["generation"])
        new = generation + 1
        fields = ["doc_key", "doc_id", "content_hash", "info", "n_chunks", "n_sentences", "n_parts", "size",
                  "mtime_ns", "gen_from", "gen_to"]
        live = {r["doc_id"]: r for r in self._live_rows(generation, fields)} if generation else {}
        retired: dict[int, dict] = {}
        restamp: dict[str, dict] = {}
        corpus_dir = state.get("corpus_dir", "")
        n_chunks, n_sentences = int(state["n_chunks"]), int(state["n_sentences"])
        written: dict[str, int] = {}
        for batch in batches:
            keys = self._new_keys(len(batch.upserts))
            for rows, key in zip(batch.upserts, keys):
                doc_id = rows.document.doc_id
                if doc_id in written:  # the same document twice in one write: the later wins
                    retired[written[doc_id]] = {"doc_key": written[doc_id]}
                self._insert_document(rows, key, new)
                written[doc_id] = key
                n_chunks += len(rows.chunks)
                n_sentences += len(rows.sentences)
                old = live.pop(doc_id, None)
                if old is not None:
                    retired[int(old["doc_key"])] = old
                    n_chunks -= int(old["n_chunks"])
                    n_sentences -= int(old["n_sentences"])
            for doc_id in batch.deletes:
                old = live.pop(doc_id, None)
                if old is not None:
                    retired[int(old["doc_key"])] = old
                    n_chunks -= int(old["n_chunks"])
                    n_sentences -= int(old["n_sentences"])
            for stamp in batch.stamps:
                old = live.get(stamp.doc_id)
                if old is not None and old["content_hash"] == stamp.content_hash:
                    restamp[stamp.doc_id] = {**old, "size": stamp.size, "mtime_ns": stamp.mtime_ns}
            if batch.corpus_dir is not None:
                corpus_dir = batch.corpus_dir
        # Retire the old versions (still read by the committed generation until the commit).
        ended = [{**row, "gen_to": new, "_v": _dummy()} for row in retired.values() if "doc_id" in row]
        if ended:
            self.call("retiring replaced documents", self._client.upsert, self.name("documents"), ended)
        if restamp:
            self.call("recording file stamps", self._client.upsert, self.name("documents"),
                      [{**row, "_v": _dummy()} for row in restamp.values()])
        self._put_state({**state, "generation": new, "corpus_dir": corpus_dir,
                         "n_chunks": n_chunks, "n_sentences": n_sentences})
        self._checked_at = 0.0  # this process sees its own write at once
        self._drop_keys(list(retired))

    def _new_keys(self, n: int) -> list[int]:
        """``n`` random document keys no stored version uses (one query per batch)."""
        keys: list[int] = []
        while len(keys) < n:
            fresh = list({secrets.randbits(KEY_BITS) or 1 for _ in range(n - len(keys))} - set(keys))
            taken = {int(r["doc_key"]) for r in self.query(
                "documents", "allocating document keys", filter=f"doc_key in {int_list(fresh)}",
                output_fields=["doc_key"])}
            keys += [k for k in fresh if k not in taken]
        return keys

    def _insert_document(self, rows: DocumentRows, key: int, generation: int) -> None:
        doc = rows.document
        parts = split_text(doc.text)
        info = {"title": doc.title, "date": doc.date, "source": doc.source, "region": doc.region,
                "sections": [[s.heading, s.start, s.end] for s in doc.sections]}
        # The document row first: a crash after it leaves rows that cleanup() can find
        # by their key (gen_from above every committed generation).
        self.call("writing a document", self._client.insert, self.name("documents"), [{
            "doc_key": key, "doc_id": doc.doc_id, "content_hash": doc.content_hash, "info": info,
            "n_chunks": len(rows.chunks), "n_sentences": len(rows.sentences), "n_parts": len(parts),
            "size": rows.size, "mtime_ns": rows.mtime_ns, "gen_from": generation, "gen_to": FOREVER,
            "_v": _dummy()}])
        self._insert("texts", [{"id": row_id(key, i), "doc_key": key, "text": part, "_v": _dummy()}
                               for i, part in enumerate(parts)])
        owners: list[list[int]] = [[] for _ in rows.sentences]
        for c, members in enumerate(rows.chunk_sentences):
            for s in members:
                owners[s].append(c)
        self._insert("chunks", [{
            "id": row_id(key, i), "doc_key": key, "start": c.start, "end": c.end,
            "text": c.text if fits(c.text) else "", "section": clip(c.section), "context": clip(c.context),
            "search_text": clip(c.search_text), "tokens": clip(" ".join(rows.chunk_tokens[i])),
            "sentences": encode_ordinals(rows.chunk_sentences[i]),
            "dense": np.asarray(rows.chunk_vectors[i], dtype=np.float32).tolist()}
            for i, c in enumerate(rows.chunks)])
        self._insert("sentences", [{
            "id": row_id(key, i), "doc_key": key, "start": s.start, "end": s.end,
            "text": s.text if fits(s.text) else "", "search_text": clip(s.search_text),
            "owners": encode_ordinals(owners[i]),
            "dense": np.asarray(rows.sentence_vectors[i], dtype=np.float32).tolist()}
            for i, s in enumerate(rows.sentences)])
        df: dict[str, int] = {}
        for tokens in rows.chunk_tokens:
            for term in set(tokens):
                df[term] = df.get(term, 0) + 1
        self._insert("terms", [{"id": f"{key}:{term}"[:1024], "doc_key": key, "term": term[:512], "df": n,
                                "_v": _dummy()} for term, n in df.items() if len(term.encode("utf-8")) <= 512])

    def _insert(self, kind: str, rows: list[dict]) -> None:
        for part in iter_batches(rows, 500):
            self.call(f"inserting into {self.name(kind)}", self._client.insert, self.name(kind), list(part))

    def _drop_keys(self, keys: list[int]) -> None:
        """Delete every row of these document versions (by filter)."""
        for part in iter_batches(keys, 1000):
            flt = f"doc_key in {int_list(part)}"
            for kind in ("chunks", "sentences", "texts", "terms", "documents"):
                self.call(f"deleting from {self.name(kind)}", self._client.delete, self.name(kind), filter=flt)

    def maintain(self, progress: Callable[[str], None] | None = None, bulk: bool = False) -> None:
        """Nothing to do: Milvus compacts its segments itself."""

    def cleanup(self, background: bool = False) -> None:
        """Delete the rows of versions no committed generation names (a crashed write's,
        or retired ones whose deletion was cut off). Always in the foreground: the rows
        are the server's to delete, and a delete request returns quickly."""
        state = self.state()
        if state is None:
            return
        g = int(state["generation"])
        rows = self.scan("documents", "finding orphaned rows", f"gen_from > {g} or gen_to <= {g}", ["doc_key"])
        if rows:
            self._drop_keys([int(r["doc_key"]) for r in rows])

    def clear(self) -> None:
        for kind in ("meta", "documents", "texts", "chunks", "sentences", "terms"):
            if self.call("listing collections", self._client.has_collection, self.name(kind)):
                self.call(f"dropping {self.name(kind)}", self._client.drop_collection, self.name(kind))
        self._snapshot = None
        for cache in (self.chunk_rows, self.sentence_rows, self.vectors, self.texts):
            with cache.lock:
                cache.clear()

    def close(self) -> None:
        """Close the connection; for a .db URI also stop this process's Milvus Lite
        server, so that another process can open the file (every store of this
        process on the same file is closed with it)."""
        try:
            self._client.close()
        except self._errors:
            pass
        if self.uri.endswith(".db"):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)


def _settings_of(state: dict) -> IndexSettings:
    return IndexSettings(state["embedder"], int(state["dim"]), int(state["chunk_size"]), int(state["chunk_overlap"]))


def _check_settings(state: dict, settings: IndexSettings, uri: str) -> None:
    stored = _settings_of(state)
    if stored != settings:
        raise IndexMismatchError(
            f"the index in Milvus at {uri} was built with {stored}, not {settings}",
            hint="rebuild it with `qa index --rebuild`, or use the settings it was built with")


class _DocumentFrequencies(Mapping):
    """df of BM25 terms over the snapshot's documents, read from ``qa_terms`` on demand."""

    def __init__(self, snapshot: "MilvusSnapshot"):
        self._snapshot = snapshot
        self._cache = _LRU(20_000)
        self._loaded: bool | None = None  # None: not decided yet
        self._all: dict[str, int] = {}

    def _preload(self) -> bool:
        """Load every term's df at once when the table is small (once per snapshot)."""
        if self._loaded is None:
            store = self._snapshot.store
            rows = store.query("terms", "counting term rows", filter="", output_fields=["count(*)"])
            self._loaded = False
            if rows and int(rows[0]["count(*)"]) <= PRELOAD_TERM_ROWS:
                counts: dict[str, int] = {}
                live = self._snapshot.by_key
                iterator = store.call("reading term statistics", store._client.query_iterator, store.name("terms"),
                                      batch_size=10_000, filter="", output_fields=["doc_key", "term", "df"])
                while True:
                    batch = store.call("reading term statistics", iterator.next)
                    if not batch:
                        iterator.close()
                        break
                    for row in batch:
                        if int(row["doc_key"]) in live:
                            counts[row["term"]] = counts.get(row["term"], 0) + int(row["df"])
                self._all = counts
                self._loaded = True
        return self._loaded

    def prefetch(self, terms: Iterable[str]) -> None:
        if self._preload():
            return
        missing = [t for t in dict.fromkeys(terms) if t not in self._cache]
        if not missing:
            return
        counts = {t: 0 for t in missing}
        live = self._snapshot.by_key
        for part in iter_batches(missing, 200):
            flt = f"term in [{','.join(str_literal(t) for t in part)}]"
            for row in self._snapshot.store.query("terms", "reading term statistics", filter=flt,
                                                  output_fields=["doc_key", "term", "df"], limit=SEARCH_LIMIT):
                if int(row["doc_key"]) in live:
                    counts[row["term"]] += int(row["df"])
        for t, n in counts.items():
            self._cache.put(t, n)

    def __getitem__(self, term: str) -> int:
        value = self.get(term, 0)
        if not value:
            raise KeyError(term)
        return value

    def get(self, term, default=None):
        if self._preload():
            value = self._all.get(term, 0)
            return value if value else default
        got = self._cache.get_many([term])
        if term not in got:
            self.prefetch([term])
            got = self._cache.get_many([term])
        value = got.get(term, 0)
        return value if value else default

    def __contains__(self, term) -> bool:
        return bool(self.get(term, 0))

    def __iter__(self):
        raise TypeError("document frequencies are looked up by term, not listed")

    def __len__(self) -> int:
        raise TypeError("document frequencies are looked up by term, not counted")


class MilvusSnapshot:
    """One committed generation of a :class:`MilvusStore`.

    It lists the document versions live at that generation (doc_id → key, metadata);
    rows of any other version that a search returns (a newer write's, or a retired
    one's not yet deleted) are dropped, so a snapshot reads one committed state.
    """

    def __init__(self, store: MilvusStore, state: dict):
        self.store = store
        self.generation = int(state["generation"])
        self.version = f"m{self.generation}"
        self.settings = _settings_of(state)
        self.corpus_dir = state.get("corpus_dir", "")
        self.n_chunks = int(state["n_chunks"])
        self.n_sentences = int(state["n_sentences"])
        rows = store._live_rows(self.generation, ["doc_key", "doc_id", "content_hash", "info", "n_chunks",
                                                  "n_sentences", "n_parts"])
        rows.sort(key=lambda r: r["doc_id"])
        self.by_key: dict[int, dict] = {int(r["doc_key"]): r for r in rows}
        self.keys: dict[str, int] = {r["doc_id"]: int(r["doc_key"]) for r in rows}
        self._infos = [self._info(r) for r in rows]
        self._info_by_id = {i.doc_id: i for i in self._infos}
        self._df = _DocumentFrequencies(self)
        self._search_params = VECTOR_INDEXES[store.vector_index][2]

    @staticmethod
    def _info(row: dict) -> DocumentInfo:
        info = row["info"]
        return DocumentInfo(row["doc_id"], info.get("title", ""), info.get("date"), info.get("source"),
                            info.get("region"), int(row["n_chunks"]), row["content_hash"])

    def light(self) -> bool:
        return False  # every ranking step is a round trip to Milvus

    # ------------------------------------------------------------------ scope

    def _filter(self, scope: Scope) -> str:
        if scope.doc_ids is None:
            return ""
        return f"doc_key in {int_list(self.keys[d] for d in sorted(scope.doc_ids) if d in self.keys)}"

    def _live(self, row_ids: Iterable[int]) -> list[bool]:
        return [key_of(i) in self.by_key for i in row_ids]

    # ------------------------------------------------------------------ candidates

    def nearest(self, vector: np.ndarray, chunk_depth: int, sentence_depth: int,
                scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        q = [np.asarray(vector, dtype=np.float32).tolist()]
        flt = self._filter(scope)
        params = {"metric_type": "IP", "params": self._search_params}
        chunks = self.store.search("chunks", "searching chunks", data=q, anns_field="dense", limit=chunk_depth,
                                   filter=flt, search_params=params)
        sentences = self.store.search("sentences", "searching sentences", data=q, anns_field="dense",
                                      limit=sentence_depth, filter=flt, search_params=params,
                                      output_fields=["owners"])
        chunk_ids = [int(h["id"]) for h in chunks if key_of(h["id"]) in self.by_key]
        owners: list[int] = []
        for h in sentences:
            key = key_of(h["id"])
            if key in self.by_key:
                owners.extend(row_id(key, c) for c in decode_ordinals(h["entity"]["owners"]))
        return np.array(chunk_ids, dtype=np.int64), np.array(owners, dtype=np.int64)

    def lexical(self, tokens: Sequence[str], scope: Scope, depth: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        tokens = [t for t in tokens if t.strip()]
        if not tokens or not self.n_chunks:
            return np.zeros(0, np.int64), np.zeros(0)
        field = "bm25_project" if self.store.bm25 == "project" else "bm25_jieba"
        hits = self.store.search("chunks", "BM25 search", data=[" ".join(tokens)], anns_field=field,
                                 limit=min(depth or SEARCH_LIMIT, SEARCH_LIMIT), filter=self._filter(scope),
                                 search_params={"metric_type": "BM25"})
        pairs = sorted((int(h["id"]), float(h["distance"])) for h in hits
                       if h["distance"] > 0 and key_of(h["id"]) in self.by_key)
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0)
        ids, scores = zip(*pairs)
        # Milvus multiplies each term's score by (k1 + 1); Lucene's variant (the local
        # store's) does not. Dividing gives the local store's values.
        scale = 1.0 / (BM25_K1 + 1.0)
        return np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float64) * scale

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        out = np.full(len(chunk_ids), -1.0, dtype=np.float32)  # a row gone since: ranks last
        if not len(chunk_ids):
            return out
        q = [np.asarray(vector, dtype=np.float32).tolist()]
        params = {"metric_type": "IP", "params": self._search_params}
        where = {int(c): i for i, c in enumerate(chunk_ids.tolist())}
        pairs: list[tuple[int, int]] = []
        for part in iter_batches(chunk_ids.tolist(), ID_BATCH):
            hits = self.store.search("chunks", "scoring chunks", data=q, anns_field="dense", limit=len(part),
                                     filter=f"id in {int_list(part)}", search_params=params,
                                     output_fields=["sentences"])
            for h in hits:
                slot = where[int(h["id"])]
                out[slot] = max(out[slot], float(h["distance"]))
                key = key_of(h["id"])
                for s in decode_ordinals(h["entity"]["sentences"]):
                    pairs.append((row_id(key, s), slot))
        sentence_ids = sorted({s for s, _ in pairs})
        best: dict[int, float] = {}
        for part in iter_batches(sentence_ids, ID_BATCH * 4):
            hits = self.store.search("sentences", "scoring sentences", data=q, anns_field="dense",
                                     limit=len(part), filter=f"id in {int_list(part)}", search_params=params)
            best.update((int(h["id"]), float(h["distance"])) for h in hits)
        for s, slot in pairs:
            if s in best and best[s] > out[slot]:
                out[slot] = best[s]
        return out

    # ------------------------------------------------------------------ rows

    def _doc_id(self, key: int) -> str:
        row = self.by_key.get(key)
        if row is None:
            raise KeyError(key)
        return row["doc_id"]

    def _load_chunks(self, ids: Sequence[int]) -> None:
        have = self.store.chunk_rows.get_many(ids)
        missing = [i for i in ids if i not in have]
        if not missing:
            return
        rows = self.store.fetch("chunks", missing, ["start", "end", "text", "section", "context", "search_text",
                                                    "sentences"], "reading chunks")
        for r in rows:
            cid = int(r["id"])
            key = key_of(cid)
            doc_id = self._doc_id(key)
            text = r["text"] or self.document(doc_id).text[r["start"]:r["end"]]
            chunk = Chunk(doc_id, int(r["start"]), int(r["end"]), text, r["section"], r["context"], r["search_text"])
            self.store.chunk_rows.put(cid, (chunk, tuple(row_id(key, s) for s in decode_ordinals(r["sentences"]))))

    def _load_sentences(self, ids: Sequence[int]) -> None:
        have = self.store.sentence_rows.get_many(ids)
        missing = [i for i in ids if i not in have]
        if not missing:
            return
        rows = self.store.fetch("sentences", missing, ["start", "end", "text", "search_text"], "reading sentences")
        for r in rows:
            sid = int(r["id"])
            doc_id = self._doc_id(key_of(sid))
            text = r["text"] or self.document(doc_id).text[r["start"]:r["end"]]
            self.store.sentence_rows.put(sid, Sentence(doc_id, int(r["start"]), int(r["end"]), text,
                                                        r["search_text"]))

    def chunk(self, chunk_id: int) -> Chunk:
        chunk_id = int(chunk_id)
        if key_of(chunk_id) not in self.by_key:
            raise KeyError(chunk_id)
        self._load_chunks([chunk_id])
        got = self.store.chunk_rows.get_many([chunk_id])
        if chunk_id not in got:
            raise KeyError(chunk_id)
        return got[chunk_id][0]

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        """The rows of ``chunk_ids``, in that order: one query for those not cached."""
        ids = [int(i) for i in chunk_ids]
        for i in ids:
            if key_of(i) not in self.by_key:
                raise KeyError(i)
        self._load_chunks(ids)
        got = self.store.chunk_rows.get_many(ids)
        missing = [i for i in ids if i not in got]
        if missing:
            raise KeyError(missing[0])
        return [got[i][0] for i in ids]

    def chunk_sentences(self, chunk_id: int) -> list[int]:
        chunk_id = int(chunk_id)
        self.chunk(chunk_id)
        ids = list(self.store.chunk_rows.get_many([chunk_id])[chunk_id][1])
        self._load_sentences(ids)  # the answer stage reads them next: one query for all
        return ids

    def sentence(self, sentence_id: int) -> Sentence:
        sentence_id = int(sentence_id)
        if key_of(sentence_id) not in self.by_key:
            raise KeyError(sentence_id)
        self._load_sentences([sentence_id])
        got = self.store.sentence_rows.get_many([sentence_id])
        if sentence_id not in got:
            raise KeyError(sentence_id)
        return got[sentence_id]

    def neighbour(self, sentence_id: int, step: int) -> int | None:
        key, ordinal = key_of(sentence_id), ordinal_of(sentence_id)
        row = self.by_key.get(key)
        other = ordinal + step
        if row is None or not 0 <= other < int(row["n_sentences"]):
            return None
        return row_id(key, other)

    def _vectors(self, kind: str, ids: np.ndarray) -> np.ndarray:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64).tolist()]
        tag = kind[0]
        have = self.store.vectors.get_many((tag, i) for i in ids)
        missing = sorted({i for i in ids if (tag, i) not in have})
        for r in self.store.fetch(kind, missing, ["dense"], f"reading {kind} vectors"):
            have[(tag, int(r["id"]))] = self.store.vectors.put((tag, int(r["id"])),
                                                               np.asarray(r["dense"], dtype=np.float32))
        out = np.zeros((len(ids), self.settings.dim), dtype=np.float32)
        for n, i in enumerate(ids):
            vec = have.get((tag, i))
            if vec is not None:
                out[n] = vec
        return out

    def sentence_vectors(self, sentence_ids: np.ndarray) -> np.ndarray:
        return self._vectors("sentences", sentence_ids)

    def chunk_vectors(self, chunk_ids: np.ndarray) -> np.ndarray:
        return self._vectors("chunks", chunk_ids)

    def all_chunks(self) -> tuple[np.ndarray, list[Chunk]]:
        """Every live chunk and its id, in id order (evaluation and calibration only)."""
        ids: list[int] = []
        for key in sorted(self.by_key):
            n = int(self.by_key[key]["n_chunks"])
            ids.extend(row_id(key, i) for i in range(n))
        self._load_chunks(ids)
        rows = self.store.chunk_rows.get_many(ids)
        order = sorted(i for i in ids if i in rows)
        return np.array(order, dtype=np.int64), [rows[i][0] for i in order]

    def document(self, doc_id: str) -> Document | None:
        key = self.keys.get(doc_id)
        if key is None:
            return None
        row = self.by_key[key]
        text = self.store.texts.get_many([key]).get(key)
        if text is None:
            parts = self.store.fetch("texts", [row_id(key, i) for i in range(int(row["n_parts"]))], ["text"],
                                     "reading a document's text")
            parts.sort(key=lambda r: int(r["id"]))
            text = self.store.texts.put(key, "".join(r["text"] for r in parts))
        info = row["info"]
        sections = tuple(Section(h, int(a), int(b)) for h, a, b in info.get("sections", []))
        return Document(doc_id, text, info.get("title", ""), info.get("date"), info.get("source"),
                        info.get("region"), sections, row["content_hash"])

    def document_info(self, doc_id: str) -> DocumentInfo | None:
        return self._info_by_id.get(doc_id)

    def documents(self) -> list[DocumentInfo]:
        return self._infos

    def term_stats(self) -> TermStats:
        return TermStats(self._df, self.n_chunks)


# ---------------------------------------------------------------- copying an index


def copy_into(snapshot, store, stamps: Mapping[str, FileStamp] | None = None, batch_docs: int = 16) -> int:
    """Write every document of ``snapshot`` (any store's) into ``store``, reusing its
    vectors: moving a local index to Milvus without embedding anything again.

    Sentences are enumerated with :meth:`neighbour` from each document's first chunk,
    so a sentence outside every chunk is copied too and neighbours keep their order.
    Returns the number of documents written.
    """
    from qa.index.lexical import tokenize

    stamps = stamps or {}
    ids, chunks = snapshot.all_chunks()
    by_doc: dict[str, list[int]] = {}
    for cid, chunk in zip(ids.tolist(), chunks):
        by_doc.setdefault(chunk.doc_id, []).append(int(cid))
    chunk_of = dict(zip(ids.tolist(), chunks))

    def sentences_of(cids: list[int]) -> list[int]:
        seed = next((s for c in cids for s in snapshot.chunk_sentences(c)), None)
        if seed is None:
            return []
        first = seed
        while (prev := snapshot.neighbour(first, -1)) is not None:
            first = prev
        out = [first]
        while (nxt := snapshot.neighbour(out[-1], 1)) is not None:
            out.append(nxt)
        return out

    def batches() -> Iterator[WriteBatch]:
        first = True
        for part in iter_batches(sorted(by_doc), batch_docs):
            rows = []
            for doc_id in part:
                cids = sorted(by_doc[doc_id])
                sids = sentences_of(cids)
                index = {s: i for i, s in enumerate(sids)}
                doc_chunks = tuple(chunk_of[c] for c in cids)
                stamp = stamps.get(doc_id)
                rows.append(DocumentRows(
                    document=snapshot.document(doc_id), chunks=doc_chunks,
                    sentences=tuple(snapshot.sentence(s) for s in sids),
                    chunk_vectors=snapshot.chunk_vectors(np.array(cids, dtype=np.int64)),
                    sentence_vectors=snapshot.sentence_vectors(np.array(sids, dtype=np.int64)),
                    chunk_tokens=tuple(tuple(tokenize(c.search_text)) for c in doc_chunks),
                    chunk_sentences=tuple(tuple(index[s] for s in snapshot.chunk_sentences(c) if s in index)
                                          for c in cids),
                    size=stamp.size if stamp else 0, mtime_ns=stamp.mtime_ns if stamp else 0))
            yield WriteBatch(upserts=tuple(rows), corpus_dir=snapshot.corpus_dir if first else None)
            first = False

    store.write(batches(), snapshot.settings)
    return len(by_doc)


# ---------------------------------------------------------------- a Milvus Lite server


@contextmanager
def lite_server(db_file: Path | str, port: int, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the Milvus Lite file ``db_file`` over gRPC on ``host:port``; yields its URI.

    Several processes (``qa serve`` replicas, a ``qa index``) can then share one
    embedded database, which a ``.db`` URI opened in-process does not allow.
    """
    _quiet_pymilvus()
    from milvus_lite.server import Server

    server = Server(str(db_file), address=f"{host}:{port}")
    if not server.init() or not server.start():
        raise StoreUnavailableError(f"cannot start Milvus Lite on {host}:{port} for {db_file}",
                                    hint="is the port free, and the file not opened by another process?")
    uri = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connect(uri, timeout=2).close()
                break
            except StoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield uri
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qa.index.milvus serve FILE.db --port P``: a Milvus Lite server."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m qa.index.milvus")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a Milvus Lite file over gRPC on a loopback port")
    serve.add_argument("db_file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=19530)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with lite_server(args.db_file, args.port, args.host) as uri:
            print(f"Milvus Lite serving {args.db_file} at {uri}", flush=True)
            stop.wait()
    except StoreUnavailableError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
