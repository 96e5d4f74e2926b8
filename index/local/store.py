"""The local store: a SQLite catalogue plus immutable, memory-mapped vector segments.

Why this design (the README's architecture section says the same at more length):

* **Writes proportional to the change.** A write adds one new segment holding only
  the new documents' vectors and inserts their rows, terms and postings in one SQLite
  transaction; a deleted or replaced document's rows are marked (tombstones) and
  its term counts undone. Nothing unchanged is read, rebuilt or rewritten.
* **Reads that don't parse.** Opening the store maps each segment's arrays and reads
  a handful of catalogue rows; chunks, sentences and documents are fetched by key
  when a hit needs them, and text is stored once (passages are offsets into it).
* **Search that doesn't touch every row.** Small segments are searched exactly,
  large ones (made by merging) through IVF; BM25 reads only the postings of the
  question's terms.
* **Crash safety.** Segment files are complete and fsynced before the transaction
  that names them commits; files no committed state names are removed by the next
  writer. Merged-away segments are deleted once no reader can still need them.
* **Merging** (:func:`choose_merge`) keeps the number of segments logarithmic in the
  corpus: eight segments of one size class become one of the next, so each row is
  rewritten a few times over the life of an index, never on every write.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from qa.errors import IndexMismatchError, NoIndexError
from qa.faults import pause_point
from qa.index import bm25
from qa.index.base import (
    DocumentInfo, DocumentRows, FileStamp, IndexSettings, Scope, TermStats, WriteBatch,
)
from qa.index.local import catalog
from qa.index.local.catalog import CHUNK, SENTENCE
from qa.index.local.segments import Segment, SegmentArrays, segment_arrays, write_merged_segment, write_segment
from qa.segments import gather_rows, rows_dot_max
from qa.types import Chunk, Document, Section, Sentence

SEGMENTS = "segments"
# A merged-away segment stays on disk this long, for readers in other processes that
# took their snapshot just before the merge committed and have not mapped it yet.
RETIRE_AFTER_S = 10.0
# Merging: segments are grouped in size classes of MERGE_FACTOR× (by live rows,
# chunks + sentences, from MERGE_FLOOR up); MERGE_FACTOR segments of one class are
# merged into one. A segment with more than a third of its rows deleted is compacted.
MERGE_FACTOR = 8
MERGE_FLOOR = 4096
COMPACT_DELETED = 1 / 3
# Up to this many vectors in all (chunks + sentences), ranking one query costs well
# under a millisecond (0.4 ms at 2.2k): a server may run it on its event loop.
LIGHT_MAX_VECTORS = 20_000
# Every this many questions the segments' mapped pages are let go (Segment.release),
# so resident memory stays near what the last questions read, not the whole index.
RELEASE_EVERY = 64


def _size_class(rows: int) -> int:
    """The merge size class of a segment with ``rows`` live rows.

    >>> [_size_class(n) for n in (1, 4096, 4097, 8 * 4096, 8 * 4096 + 1)]
    [0, 0, 1, 1, 2]
    """
    if rows <= MERGE_FLOOR:
        return 0
    return 1 + int(math.floor(math.log(rows / MERGE_FLOOR - 1e-9, MERGE_FACTOR)))


def choose_merge(segments: list[tuple[int, int, int]]) -> tuple[int, ...]:
    """Which segments to merge next: ``(seg, rows, deleted rows)`` in, seg ids out.

    The smallest size class with MERGE_FACTOR segments is merged (its smallest ones);
    failing that, the segment with the largest share of deleted rows above
    COMPACT_DELETED is compacted alone; failing that, nothing.

    >>> choose_merge([(i, 100, 0) for i in range(9)])
    (0, 1, 2, 3, 4, 5, 6, 7)
    >>> choose_merge([(1, 100, 0), (2, 5000, 0)])
    ()
    >>> choose_merge([(1, 100, 0), (2, 900, 600)])
    (2,)
    """
    classes: dict[int, list[tuple[int, int]]] = {}
    for seg, rows, deleted in segments:
        classes.setdefault(_size_class(rows - deleted), []).append((rows - deleted, seg))
    for size_class in sorted(classes):
        members = sorted(classes[size_class])
        if len(members) >= MERGE_FACTOR:
            return tuple(sorted(seg for _, seg in members[:MERGE_FACTOR]))
    worst = max(((deleted / rows, seg) for seg, rows, deleted in segments if rows), default=None)
    if worst is not None and worst[0] > COMPACT_DELETED:
        return (worst[1],)
    return ()


def choose_final_merge(segments: list[tuple[int, int, int]], fresh: frozenset[int] = frozenset()
                       ) -> tuple[int, ...]:
    """After a bulk build: the build's own segments (``fresh``) and every segment below
    the largest size class, merged into one.

    The class rule leaves up to seven segments in each class, each searched on its
    own: k segments of n/k rows cost a question about √k times one segment's IVF
    probe (each probes the same number of lists of √(n/k) rows). Merging what this
    build wrote costs a rewrite of this build's rows, so a build stays linear in what
    it added; older segments of the top class are left alone.

    >>> choose_final_merge([(1, 300_000, 0), (2, 40_000, 0), (3, 9_000, 0), (4, 9_000, 0)])
    (2, 3, 4)
    >>> choose_final_merge([(1, 300_000, 0), (2, 9_000, 0)])
    ()
    >>> choose_final_merge([(1, 300_000, 0), (2, 300_000, 0), (3, 9_000, 0)], fresh=frozenset({2, 3}))
    (2, 3)
    """
    if len(segments) < 2:
        return ()
    top = max(_size_class(rows - deleted) for _, rows, deleted in segments)
    rest = tuple(sorted(seg for seg, rows, deleted in segments
                        if _size_class(rows - deleted) < top or seg in fresh))
    return rest if len(rest) >= 2 else ()


class LocalStore:
    """An index folder: ``catalog.sqlite3`` and ``segments/<n>/``.

    One instance serves any number of reader threads (each gets its own SQLite
    connection) and one writer at a time (the pipeline serialises writers, across
    processes too, with a lock file).
    """

    name = "local"

    def __init__(self, index_dir: Path | str):
        self.dir = Path(index_dir)
        self._local = threading.local()
        self._segments: dict[int, Segment] = {}  # opened segments, shared by snapshots
        # Segments the last write() added, and what merges made of them: a bulk build's
        # final merge gathers them (choose_final_merge).
        self._fresh: set[int] = set()
        self._snapshot: LocalSnapshot | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "LocalStore":
        return cls(settings.index_dir)

    # ------------------------------------------------------------------ plumbing

    @property
    def catalog_path(self) -> Path:
        return self.dir / catalog.CATALOG

    def _check_format(self) -> None:
        if (self.dir / "CURRENT").exists() or any(self.dir.glob("v[0-9]*")):
            raise IndexMismatchError(
                f"the index in {self.dir} is in the old format 1 (one folder per version), "
                "which this version reads no more",
                hint="rebuild it with `qa index --rebuild` (the corpus files are untouched; "
                "the old version folders are replaced)",
            )

    def exists(self) -> bool:
        return self.catalog_path.exists()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self.exists():
                self._check_format()
                raise NoIndexError(
                    f"no index found in {self.dir}",
                    hint="build one with `qa index [FOLDER]` (no folder: the bundled sample corpus)",
                )
            conn = catalog.connect(self.catalog_path)
            self._local.conn = conn
            self._local.depth = 0
        return conn

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction on this thread's connection (re-entrant).

        Every row a request reads comes from the committed state at its start, so a
        write that commits meanwhile is seen by the next request, never half-way.
        """
        conn = self._reader()
        if self._local.depth == 0:
            conn.execute("BEGIN")
        self._local.depth += 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if self._local.depth == 0:
                conn.execute("COMMIT")

    def _writer(self) -> sqlite3.Connection:
        self._check_format()
        self.dir.mkdir(parents=True, exist_ok=True)
        conn = catalog.connect(self.catalog_path)
        catalog.create(conn)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ------------------------------------------------------------------ facts

    def index_settings(self) -> IndexSettings | None:
        if not self.exists():
            self._check_format()
            return None
        values = catalog.meta(self._reader())
        if "embedder" not in values:
            return None
        return IndexSettings(values["embedder"], int(values["dim"]), int(values["chunk_size"]),
                             int(values["chunk_overlap"]))

    def corpus_dir(self) -> str:
        if not self.exists():
            return ""
        return catalog.meta(self._reader()).get("corpus_dir", "")

    def stamps(self) -> dict[str, FileStamp]:
        if not self.exists():
            self._check_format()
            return {}
        rows = self._reader().execute("SELECT doc_id, content_hash, size, mtime_ns FROM documents")
        return {r[0]: FileStamp(*r) for r in rows}

    # ------------------------------------------------------------------ reads

    def snapshot(self) -> "LocalSnapshot":
        """The live state (inside :meth:`reading`, the state at the transaction's start)."""
        conn = self._reader()
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        if generation is None or int(generation[0]) == 0:
            raise NoIndexError(f"no index found in {self.dir}",
                               hint="build one with `qa index [FOLDER]` (no folder: the bundled sample corpus)")
        snap = self._snapshot
        if snap is not None and snap.generation == int(generation[0]):
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.generation != int(generation[0]):
                snap = self._open_snapshot(conn)
                self._snapshot = snap
        return snap

    def _open_snapshot(self, conn: sqlite3.Connection) -> "LocalSnapshot":
        values = catalog.meta(conn)
        segs = [r[0] for r in conn.execute("SELECT seg FROM segments ORDER BY seg")]
        opened = []
        for seg in segs:
            segment = self._segments.get(seg)
            if segment is None:
                segment = Segment.open(self.dir / SEGMENTS / f"{seg:08d}", seg)
                self._segments[seg] = segment
            opened.append(segment)
        # Segments no snapshot will ask for again (merged away) are let go.
        for seg in set(self._segments) - set(segs):
            del self._segments[seg]
        dead: dict[tuple[int, int], list[int]] = {}
        for seg, kind, pos in conn.execute("SELECT seg, kind, pos FROM tombstones"):
            dead.setdefault((seg, kind), []).append(pos)
        return LocalSnapshot(self, values, opened, dead)

    # ------------------------------------------------------------------ writes

    def clear(self) -> None:
        """Remove the whole index (including an index of the old format)."""
        self.close()
        self._snapshot = None
        self._segments.clear()
        if not self.dir.exists():
            return
        for path in self.dir.iterdir():
            if path.name in (catalog.CATALOG, f"{catalog.CATALOG}-wal", f"{catalog.CATALOG}-shm", "CURRENT"):
                path.unlink()
            elif path.is_dir() and (path.name == SEGMENTS or path.name.startswith(("v", ".tmp-"))):
                shutil.rmtree(path, ignore_errors=True)

    def write(self, batches: Iterable[WriteBatch], settings: IndexSettings) -> None:
        conn = self._writer()
        try:
            self._remove_unreferenced(conn)
            conn.execute("BEGIN IMMEDIATE")
            written: list[Path] = []
            try:
                self._check_settings(conn, settings)
                for batch in batches:
                    self._apply(conn, batch, settings, written)
                generation = int(catalog.meta(conn)["generation"]) + 1
                catalog.set_meta(conn, generation=generation)
                pause_point("before-commit", self.dir)
                conn.execute("COMMIT")
                self._fresh = {int(folder.name) for folder in written}
            except BaseException:
                conn.execute("ROLLBACK")
                for folder in written:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        finally:
            conn.close()

    def _check_settings(self, conn: sqlite3.Connection, settings: IndexSettings) -> None:
        values = catalog.meta(conn)
        if "embedder" not in values:
            catalog.set_meta(conn, **asdict(settings))
            return
        stored = IndexSettings(values["embedder"], int(values["dim"]), int(values["chunk_size"]),
                               int(values["chunk_overlap"]))
        if stored != settings:
            raise IndexMismatchError(
                f"the index in {self.dir} was built with {stored}, not {settings}",
                hint="rebuild it with `qa index --rebuild`, or use the settings it was built with",
            )

    def _apply(self, conn: sqlite3.Connection, batch: WriteBatch, settings: IndexSettings,
               written: list[Path]) -> None:
        values = catalog.meta(conn)
        n_chunks, n_sentences = int(values["n_chunks"]), int(values["n_sentences"])
        total_length = int(values["total_length"])
        replaced = [u.document.doc_id for u in batch.upserts]
        for doc_id in list(batch.deletes) + replaced:
            removed = self._remove_document(conn, doc_id)
            n_chunks, n_sentences, total_length = (n_chunks - removed[0], n_sentences - removed[1],
                                                   total_length - removed[2])
        if batch.upserts:
            seg = int(values["next_seg"]) + 1
            folder = self.dir / SEGMENTS / f"{seg:08d}"
            arrays, rows = self._segment_rows(conn, batch.upserts, seg, settings.dim)
            written.append(folder)
            write_segment(folder, arrays)
            pause_point("segment-written", self.dir)
            conn.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)", rows["chunks"])
            conn.executemany("INSERT INTO sentences VALUES (?,?,?,?,?,?)", rows["sentences"])
            conn.executemany("INSERT INTO postings VALUES (?,?,?)", rows["postings"])
            conn.executemany("INSERT INTO terms VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
                             rows["df"].items())
            conn.execute("INSERT INTO segments VALUES (?,?,?)",
                         (seg, len(arrays.chunk_vectors), len(arrays.sentence_vectors)))
            n_chunks += len(arrays.chunk_vectors)
            n_sentences += len(arrays.sentence_vectors)
            total_length += int(np.asarray(arrays.chunk_lengths).sum())
            values["next_seg"] = str(seg)
        conn.executemany("UPDATE documents SET content_hash = ?, size = ?, mtime_ns = ? WHERE doc_id = ?",
                         [(s.content_hash, s.size, s.mtime_ns, s.doc_id) for s in batch.stamps])
        updates = dict(n_chunks=n_chunks, n_sentences=n_sentences, total_length=total_length,
                       next_seg=values["next_seg"])
        if batch.corpus_dir is not None:
            updates["corpus_dir"] = batch.corpus_dir
        catalog.set_meta(conn, **updates)

    def _segment_rows(self, conn: sqlite3.Connection, upserts: tuple[DocumentRows, ...], seg: int,
                      dim: int) -> tuple[SegmentArrays, dict]:
        """The new segment's arrays and the catalogue rows that go with it."""
        chunk_vecs, sent_vecs, links, chunk_docs, sent_docs, lengths = [], [], [], [], [], []
        chunk_rows, sent_rows = [], []
        postings: dict[str, tuple[list[int], list[int]]] = {}
        df: Counter[str] = Counter()
        for rows in upserts:
            doc = rows.document
            doc_terms: Counter[str] = Counter()
            for tokens in rows.chunk_tokens:
                doc_terms.update(set(tokens))
            length = sum(len(t) for t in rows.chunk_tokens)
            cursor = conn.execute(
                "INSERT INTO documents(doc_id, content_hash, size, mtime_ns, title, date, source, region, "
                "sections, text, chunks, sentences, length, terms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (doc.doc_id, doc.content_hash, rows.size, rows.mtime_ns, doc.title,
                 doc.date, doc.source, doc.region, json.dumps([asdict(s) for s in doc.sections], ensure_ascii=False),
                 doc.text, len(rows.chunks), len(rows.sentences), length,
                 json.dumps(doc_terms, ensure_ascii=False)))
            key = cursor.lastrowid
            s_base = len(sent_vecs)
            for chunk, tokens, vector, members in zip(rows.chunks, rows.chunk_tokens, rows.chunk_vectors,
                                                      rows.chunk_sentences):
                pos = len(chunk_vecs)
                chunk_rows.append((seg, pos, key, chunk.start, chunk.end, chunk.section, chunk.context,
                                   chunk.search_text))
                chunk_vecs.append(vector)
                links.append([s_base + m for m in members])
                chunk_docs.append(key)
                lengths.append(len(tokens))
                for term, tf in Counter(tokens).items():
                    entry = postings.setdefault(term, ([], []))
                    entry[0].append(pos)
                    entry[1].append(tf)
            for sentence, vector in zip(rows.sentences, rows.sentence_vectors):
                sent_rows.append((seg, len(sent_vecs), key, sentence.start, sentence.end, sentence.search_text))
                sent_vecs.append(vector)
                sent_docs.append(key)
            df.update(doc_terms)
        arrays = segment_arrays(chunk_vecs, sent_vecs, links, chunk_docs, sent_docs, lengths, dim)
        packed = [(term, seg, bm25.pack_postings(np.array(p), np.array(t))) for term, (p, t) in postings.items()]
        return arrays, {"chunks": chunk_rows, "sentences": sent_rows, "postings": packed, "df": df}

    def _remove_document(self, conn: sqlite3.Connection, doc_id: str) -> tuple[int, int, int]:
        """Tombstone a document's rows and undo its term counts; ``(chunks, sentences, length)``."""
        row = conn.execute("SELECT doc_key, chunks, sentences, length, terms FROM documents WHERE doc_id = ?",
                           (doc_id,)).fetchone()
        if row is None:
            return 0, 0, 0
        key, chunks, sentences, length, terms = row
        conn.execute("INSERT OR IGNORE INTO tombstones SELECT seg, ?, pos FROM chunks WHERE doc_key = ?", (CHUNK, key))
        conn.execute("INSERT OR IGNORE INTO tombstones SELECT seg, ?, pos FROM sentences WHERE doc_key = ?",
                     (SENTENCE, key))
        conn.execute("DELETE FROM chunks WHERE doc_key = ?", (key,))
        conn.execute("DELETE FROM sentences WHERE doc_key = ?", (key,))
        conn.executemany("UPDATE terms SET df = df - ? WHERE term = ?",
                         [(n, term) for term, n in json.loads(terms).items()])
        conn.execute("DELETE FROM terms WHERE df <= 0")
        conn.execute("DELETE FROM documents WHERE doc_key = ?", (key,))
        return chunks, sentences, length

    def cleanup(self, background: bool = False) -> None:
        """Remove what no committed state names; ``background``: the folders are renamed
        out of the way at once and deleted by a daemon thread (a server starting after a
        large build need not wait for gigabytes of merged-away segments to be unlinked;
        a deletion cut short by an exit is finished by the next cleanup)."""
        if not self.exists():
            return
        conn = self._writer()
        try:
            doomed = self._remove_unreferenced(conn, delete=not background)
        finally:
            conn.close()
        if doomed:
            thread = threading.Thread(target=_delete_folders, args=(doomed,), name="qa-segment-cleanup",
                                      daemon=True)
            _CLEANERS.append(thread)
            thread.start()

    def _remove_unreferenced(self, conn: sqlite3.Connection, delete: bool = True) -> list[Path]:
        """Delete segment folders no committed state names (a crashed write's, or a
        merged-away one old enough that no reader can still need it). With ``delete``
        off they are only renamed to ``.tmp-…`` (which no state names either) and
        returned, for the caller to delete."""
        folder = self.dir / SEGMENTS
        if not folder.exists():
            return []
        live = {r[0] for r in conn.execute("SELECT seg FROM segments")}
        now = time.time()
        young = {r[0] for r in conn.execute("SELECT seg FROM retired WHERE at > ?", (now - RETIRE_AFTER_S,))}
        doomed = []
        for path in folder.iterdir():
            name = path.name
            if name.isdigit() and int(name) not in live | young:
                target = path.with_name(f".tmp-removed-{name}")
                os.replace(path, target)
                doomed.append(target)
            elif name.startswith(".tmp-"):
                doomed.append(path)
        conn.execute("DELETE FROM retired WHERE at <= ?", (now - RETIRE_AFTER_S,))
        if delete:
            _delete_folders(doomed)
            return []
        return doomed

    # ------------------------------------------------------------------ merging

    def maintain(self, progress: Callable[[str], None] | None = None, bulk: bool = False) -> int:
        """Merge segments until :func:`choose_merge` finds nothing; returns merges done.

        ``bulk`` (after a folder build): also give the journal's space back, which
        waits for readers and costs an fsync, so it is not done after every upload."""
        if not self.exists():
            return 0
        conn = self._writer()
        merges = 0
        try:
            self._remove_unreferenced(conn)
            while True:
                sizes = [(seg, c + s, 0) for seg, c, s in conn.execute("SELECT seg, chunks, sentences FROM segments")]
                dead = dict(conn.execute("SELECT seg, COUNT(*) FROM tombstones GROUP BY seg").fetchall())
                segments = [(seg, rows, dead.get(seg, 0)) for seg, rows, _ in sizes]
                # A bulk build's final merge comes first: it takes in whatever the class
                # merges would have merged on the way, so each row is rewritten once.
                final = choose_final_merge(segments, frozenset(self._fresh)) if bulk else ()
                plan = final or choose_merge(segments)
                if not plan:
                    if bulk:  # a bulk write grows the journal to its size; give the space back
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    return merges
                if progress:
                    progress(f"merging segments {', '.join(map(str, plan))}")
                self._merge(conn, plan)
                merges += 1
        finally:
            conn.close()

    def _merge(self, conn: sqlite3.Connection, plan: tuple[int, ...]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        folder = None
        try:
            values = catalog.meta(conn)
            new = int(values["next_seg"]) + 1
            folder = self.dir / SEGMENTS / f"{new:08d}"
            sources = [Segment.open(self.dir / SEGMENTS / f"{seg:08d}", seg) for seg in plan]
            dead: dict[tuple[int, int], list[int]] = {}
            for seg, kind, pos in conn.execute(
                    f"SELECT seg, kind, pos FROM tombstones WHERE seg IN ({','.join('?' * len(plan))})", plan):
                dead.setdefault((seg, kind), []).append(pos)
            maps = _live_maps(sources, dead)
            n_c = sum(int((m[0] >= 0).sum()) for m in maps)
            n_s = sum(int((m[1] >= 0).sum()) for m in maps)
            if n_c or n_s:  # segments with nothing live left are only retired
                _merge_segments(folder, sources, maps)
            for source, (chunk_map, sent_map) in zip(sources, maps):
                self._move_rows(conn, "chunks", source.seg, new, chunk_map)
                self._move_rows(conn, "sentences", source.seg, new, sent_map)
            self._merge_postings(conn, plan, new, [m[0] for m in maps])
            marks = ",".join("?" * len(plan))
            conn.execute(f"DELETE FROM tombstones WHERE seg IN ({marks})", plan)
            conn.execute(f"DELETE FROM segments WHERE seg IN ({marks})", plan)
            conn.executemany("INSERT OR REPLACE INTO retired VALUES (?, ?)", [(seg, time.time()) for seg in plan])
            if n_c or n_s:
                conn.execute("INSERT INTO segments VALUES (?,?,?)", (new, n_c, n_s))
            catalog.set_meta(conn, next_seg=new, generation=int(values["generation"]) + 1)
            conn.execute("COMMIT")
            if self._fresh & set(plan):
                self._fresh = (self._fresh - set(plan)) | {new}
        except BaseException:
            conn.execute("ROLLBACK")
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    @staticmethod
    def _move_rows(conn: sqlite3.Connection, table: str, old: int, new: int, mapping: np.ndarray) -> None:
        keep = np.flatnonzero(mapping >= 0)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS moved(pos INTEGER PRIMARY KEY, new INTEGER)")
        conn.execute("DELETE FROM moved")
        conn.executemany("INSERT INTO moved VALUES (?, ?)", zip(keep.tolist(), mapping[keep].tolist()))
        columns = "doc_key, start, end, section, context, search_text" if table == "chunks" else \
            "doc_key, start, end, search_text"
        conn.execute(f"INSERT INTO {table} SELECT ?, moved.new, {columns} FROM {table} "
                     f"JOIN moved ON {table}.pos = moved.pos WHERE {table}.seg = ?", (new, old))
        conn.execute(f"DELETE FROM {table} WHERE seg = ?", (old,))

    @staticmethod
    def _merge_postings(conn: sqlite3.Connection, plan: tuple[int, ...], new: int,
                        chunk_maps: list[np.ndarray]) -> None:
        by_seg = dict(zip(plan, chunk_maps))
        merged: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        marks = ",".join("?" * len(plan))
        for term, seg, data in conn.execute(
                f"SELECT term, seg, data FROM postings WHERE seg IN ({marks}) ORDER BY term, seg", plan):
            positions, tfs = bm25.unpack_postings(data)
            mapped = by_seg[seg][positions]
            keep = mapped >= 0
            if keep.any():
                merged.setdefault(term, []).append((mapped[keep], tfs[keep]))
        conn.execute(f"DELETE FROM postings WHERE seg IN ({marks})", plan)
        conn.executemany("INSERT INTO postings VALUES (?,?,?)", (
            (term, new, bm25.pack_postings(np.concatenate([p for p, _ in parts]), np.concatenate([t for _, t in parts])))
            for term, parts in merged.items()))


# Background deletions started by cleanup(background=True), so that a caller that must
# see the folder settled (the fault benchmark counting leftover files) can wait for them.
_CLEANERS: list[threading.Thread] = []


def finish_cleanup(timeout: float = 60.0) -> None:
    """Wait until background deletions of merged-away segment folders are done."""
    while _CLEANERS:
        _CLEANERS.pop().join(timeout)


def _delete_folders(folders: list[Path]) -> None:
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)


def _live_maps(sources: list[Segment], dead: dict[tuple[int, int], list[int]]
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per source segment, old → new positions of its chunks and of its sentences in
    the merged segment (-1 for deleted rows), the sources laid end to end.

    >>> class S: seg, n_chunks, n_sentences = 1, 3, 2
    >>> [m.tolist() for m in _live_maps([S()], {(1, 0): [1]})[0]]
    [[0, -1, 1], [0, 1]]
    """
    maps = []
    c_total = s_total = 0
    for src in sources:
        c_live = np.ones(src.n_chunks, bool)
        c_live[dead.get((src.seg, CHUNK), [])] = False
        s_live = np.ones(src.n_sentences, bool)
        s_live[dead.get((src.seg, SENTENCE), [])] = False
        c_map = np.full(src.n_chunks, -1, np.int64)
        c_map[c_live] = c_total + np.arange(int(c_live.sum()))
        s_map = np.full(src.n_sentences, -1, np.int64)
        s_map[s_live] = s_total + np.arange(int(s_live.sum()))
        c_total += int(c_live.sum())
        s_total += int(s_live.sum())
        maps.append((c_map, s_map))
    return maps


def _merge_segments(folder: Path, sources: list[Segment], maps: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write the live rows of ``sources`` (per ``maps``) as one segment; the vectors are
    copied file to file (:func:`write_merged_segment`), the small arrays in memory."""
    dim = sources[0].a.chunk_vectors.shape[1]
    parts = {"chunk_docs": [], "sentence_docs": [], "chunk_lengths": [], "links": []}
    for src, (c_map, s_map) in zip(sources, maps):
        c_keep, s_keep = c_map >= 0, s_map >= 0
        parts["chunk_docs"].append(np.asarray(src.a.chunk_docs)[c_keep])
        parts["sentence_docs"].append(np.asarray(src.a.sentence_docs)[s_keep])
        parts["chunk_lengths"].append(np.asarray(src.a.chunk_lengths)[c_keep])
        for pos in np.flatnonzero(c_keep):
            members = src.a.cs_idx[src.a.cs_ptr[pos]:src.a.cs_ptr[pos + 1]]
            mapped = s_map[members]
            parts["links"].append(mapped[mapped >= 0].tolist())
    from qa.segments import csr

    ptr, idx = csr(parts["links"])
    no_vectors = np.zeros((0, dim), np.float32)  # the vectors go file to file, not through here
    write_merged_segment(folder, SegmentArrays(
        chunk_vectors=no_vectors, sentence_vectors=no_vectors, cs_ptr=ptr, cs_idx=idx,
        chunk_docs=np.concatenate(parts["chunk_docs"]),
        sentence_docs=np.concatenate(parts["sentence_docs"]),
        chunk_lengths=np.concatenate(parts["chunk_lengths"]),
    ), [(src.folder, c_map >= 0, s_map >= 0) for src, (c_map, s_map) in zip(sources, maps)], dim)


class _DocumentFrequencies(Mapping):
    """``df`` of :class:`TermStats`: looked up in the catalogue term by term, cached."""

    def __init__(self, store: LocalStore):
        self._store = store
        self._cache: dict[str, int] = {}

    def __getitem__(self, term: str) -> int:
        value = self.get(term, None)
        if value is None:
            raise KeyError(term)
        return value

    def get(self, term, default=None):
        value = self._cache.get(term)
        if value is None:
            row = self._store._reader().execute("SELECT df FROM terms WHERE term = ?", (term,)).fetchone()
            value = row[0] if row else 0
            if len(self._cache) > 50_000:  # a bound, not an LRU: questions' terms repeat
                self._cache.clear()
            self._cache[term] = value
        return value or default

    def __contains__(self, term) -> bool:
        return bool(self.get(term, 0))

    def __iter__(self):
        return iter(r[0] for r in self._store._reader().execute("SELECT term FROM terms"))

    def __len__(self) -> int:
        return self._store._reader().execute("SELECT COUNT(*) FROM terms").fetchone()[0]


class _LRU(OrderedDict):
    """A bounded cache shared by reader threads (the lock guards the eviction)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self._lock = threading.Lock()

    def put(self, key, value):
        with self._lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


class LocalSnapshot:
    """One committed state of a :class:`LocalStore`. Ids are global positions: the
    segments' rows laid end to end in segment order."""

    def __init__(self, store: LocalStore, values: dict[str, str], segments: list[Segment],
                 dead: dict[tuple[int, int], list[int]]):
        self.store = store
        self.generation = int(values["generation"])
        self.version = f"g{self.generation}"
        self.settings = IndexSettings(values["embedder"], int(values["dim"]), int(values["chunk_size"]),
                                      int(values["chunk_overlap"]))
        self.corpus_dir = values.get("corpus_dir", "")
        self.n_chunks = int(values["n_chunks"])
        self.n_sentences = int(values["n_sentences"])
        self.avgdl = int(values["total_length"]) / max(self.n_chunks, 1)
        self.segments = segments
        self._seg_index = {s.seg: i for i, s in enumerate(segments)}
        self._length_norms: dict[int, np.ndarray] = {}  # segment index → float32 norms
        self.chunk_base = np.zeros(len(segments) + 1, np.int64)
        np.cumsum([s.n_chunks for s in segments], out=self.chunk_base[1:])
        self.sentence_base = np.zeros(len(segments) + 1, np.int64)
        np.cumsum([s.n_sentences for s in segments], out=self.sentence_base[1:])
        # Live masks only for segments with deletions (None: every row live).
        self.chunk_live: list[np.ndarray | None] = []
        self.sentence_live: list[np.ndarray | None] = []
        for seg in segments:
            for kind, n, out in ((CHUNK, seg.n_chunks, self.chunk_live), (SENTENCE, seg.n_sentences, self.sentence_live)):
                gone = dead.get((seg.seg, kind))
                if gone:
                    mask = np.ones(n, bool)
                    mask[gone] = False
                    out.append(mask)
                else:
                    out.append(None)
        self._masks: _LRU = _LRU(64)  # scope → per-segment (chunk, sentence) masks
        self._docs: _LRU = _LRU(256)
        self._infos: _LRU = _LRU(4096)
        self._all_infos: list[DocumentInfo] | None = None
        self._df = _DocumentFrequencies(store)
        self._queries = 0

    # ------------------------------------------------------------------ positions

    def _locate(self, ids: np.ndarray, base: np.ndarray) -> np.ndarray:
        return np.searchsorted(base, ids, side="right") - 1

    def light(self) -> bool:
        return int(self.chunk_base[-1] + self.sentence_base[-1]) <= LIGHT_MAX_VECTORS

    def nearest_off_thread(self) -> bool:
        # Unfiltered, nearest() reads only the segments (immutable) and the tombstone
        # masks of this state; lexical() reads the catalogue on the caller's connection.
        return not self.light()

    # ------------------------------------------------------------------ scope

    def _segment_masks(self, scope: Scope) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        key = None if scope.doc_ids is None else scope.doc_ids
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        if scope.doc_ids is None:
            masks = list(zip(self.chunk_live, self.sentence_live))
        else:
            keys = self._doc_keys(scope.doc_ids)
            masks = []
            for seg, c_live, s_live in zip(self.segments, self.chunk_live, self.sentence_live):
                c = np.isin(seg.a.chunk_docs, keys)
                s = np.isin(seg.a.sentence_docs, keys)
                masks.append((c if c_live is None else c & c_live, s if s_live is None else s & s_live))
        return self._masks.put(key, masks)

    def _doc_keys(self, doc_ids: frozenset[str]) -> np.ndarray:
        conn = self.store._reader()
        keys = []
        ids = sorted(doc_ids)
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            keys += [r[0] for r in conn.execute(
                f"SELECT doc_key FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part)]
        return np.array(keys, dtype=np.int64)

    # ------------------------------------------------------------------ candidates

    def nearest(self, vector: np.ndarray, chunk_depth: int, sentence_depth: int,
                scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(vector, dtype=np.float32)
        c_scores, c_ids, s_scores, s_ids = [], [], [], []
        for i, (seg, (c_mask, s_mask)) in enumerate(zip(self.segments, self._segment_masks(scope))):
            if c_mask is None or c_mask.any():
                scores, local = seg.search("chunks", q, chunk_depth, c_mask)
                c_scores.append(scores)
                c_ids.append(local + self.chunk_base[i])
            if s_mask is None or s_mask.any():
                scores, local = seg.search("sentences", q, sentence_depth, s_mask)
                s_scores.append(scores)
                s_ids.append(local + self.sentence_base[i])
        sentences = _best(s_scores, s_ids, sentence_depth)
        # Each of the best sentences stands for the chunks that hold it.
        owners = []
        where = self._locate(sentences, self.sentence_base)
        for i in np.unique(where):
            seg = self.segments[i]
            local = sentences[where == i] - self.sentence_base[i]
            flat, _ = gather_rows(seg.sc_ptr, seg.sc_idx, local)
            owners.append(flat + self.chunk_base[i])
        owner_ids = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        return _best(c_scores, c_ids, chunk_depth), owner_ids

    def lexical(self, tokens, scope: Scope, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        tokens = list(tokens)
        total = int(self.chunk_base[-1])
        if not tokens or total == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        counts = Counter(tokens)
        conn = self.store._reader()
        marks = ",".join("?" * len(counts))
        df = dict(conn.execute(f"SELECT term, df FROM terms WHERE term IN ({marks})", list(counts)))
        if not df:
            return np.zeros(0, np.int64), np.zeros(0)
        # Each term's postings are distinct positions, so its scores are added with one
        # scatter; no array of all postings is built (a common term has ~100k).
        scores = np.zeros(total, dtype=np.float32)
        rows = conn.execute(f"SELECT term, seg, data FROM postings WHERE term IN ({','.join('?' * len(df))})",
                            list(df))
        for term, seg, data in rows:
            i = self._seg_index.get(seg)
            if i is None:
                continue
            local, tfs = bm25.unpack_postings(data)
            at = local.astype(np.intp)
            weights = bm25.term_scores(tfs, self._norms(i).take(at), df[term], self.n_chunks)
            if counts[term] != 1:
                weights *= np.float32(counts[term])
            if self.chunk_base[i]:
                at += self.chunk_base[i]
            scores[at] += weights
        for i, (c_mask, _) in enumerate(self._segment_masks(scope)):
            if c_mask is not None:
                part = scores[self.chunk_base[i]:self.chunk_base[i + 1]]
                part[~c_mask] = 0.0
        positive = np.flatnonzero(scores > 0)
        if depth is not None and len(positive) > depth:
            positive = positive[bm25.best_positions(scores[positive], depth)]
        return positive, scores[positive].astype(np.float64)

    def _norms(self, i: int) -> np.ndarray:
        """BM25 length norms of segment ``i``'s chunks at this state's average length."""
        norms = self._length_norms.get(i)
        if norms is None:
            norms = self._length_norms[i] = bm25.length_norms(self.segments[i].a.chunk_lengths, self.avgdl)
        return norms

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        self._queries += 1
        if self._queries % RELEASE_EVERY == 0:
            for segment in self.segments:
                segment.release()
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        out = np.zeros(len(chunk_ids), dtype=np.float32)
        if not len(chunk_ids):
            return out
        q = np.asarray(vector, dtype=np.float32)
        where = self._locate(chunk_ids, self.chunk_base)
        for i in np.unique(where):
            members = np.flatnonzero(where == i)
            seg = self.segments[i]
            local = chunk_ids[members] - self.chunk_base[i]
            best = seg.rows("chunks", local) @ q
            # The candidates' sentences, read once and multiplied per chunk.
            flat, lengths = gather_rows(seg.a.cs_ptr, seg.a.cs_idx, local)
            wanted = np.unique(flat)
            ptr = np.zeros(len(local) + 1, dtype=np.int64)
            np.cumsum(lengths, out=ptr[1:])
            sentence_best, _ = rows_dot_max(seg.rows("sentences", wanted), ptr, np.searchsorted(wanted, flat),
                                            np.arange(len(local)), q)
            out[members] = np.maximum(best, sentence_best)
        return out

    # ------------------------------------------------------------------ rows

    def _split(self, chunk_id: int, base: np.ndarray) -> tuple[Segment, int]:
        i = int(np.searchsorted(base, chunk_id, side="right") - 1)
        if not 0 <= chunk_id < base[-1]:
            raise KeyError(chunk_id)
        return self.segments[i], int(chunk_id - base[i])

    def chunk(self, chunk_id: int) -> Chunk:
        seg, pos = self._split(int(chunk_id), self.chunk_base)
        row = self.store._reader().execute(
            "SELECT d.doc_id, c.start, c.end, substr(d.text, c.start + 1, c.end - c.start), c.section, "
            "c.context, c.search_text FROM chunks c JOIN documents d ON d.doc_key = c.doc_key "
            "WHERE c.seg = ? AND c.pos = ?", (seg.seg, pos)).fetchone()
        if row is None:
            raise KeyError(chunk_id)
        return Chunk(*row)

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        """The chunks with these ids, in that order, in one catalogue query."""
        keys = [self._split(int(c), self.chunk_base) for c in chunk_ids]
        by_seg: dict[int, list[int]] = {}
        for seg, pos in keys:
            by_seg.setdefault(seg.seg, []).append(pos)
        found = {}
        for seg, positions in by_seg.items():  # one primary-key range per segment
            for r in self.store._reader().execute(
                    "SELECT c.seg, c.pos, d.doc_id, c.start, c.end, substr(d.text, c.start + 1, c.end - c.start), "
                    "c.section, c.context, c.search_text FROM chunks c JOIN documents d ON d.doc_key = c.doc_key "
                    f"WHERE c.seg = ? AND c.pos IN ({','.join('?' * len(positions))})", [seg, *positions]):
                found[(r[0], r[1])] = Chunk(*r[2:])
        try:
            return [found[(seg.seg, pos)] for seg, pos in keys]
        except KeyError as exc:
            raise KeyError(f"chunk {exc} is not in this snapshot") from None

    def chunk_sentences(self, chunk_id: int) -> list[int]:
        seg, pos = self._split(int(chunk_id), self.chunk_base)
        base = int(self.sentence_base[self.segments.index(seg)])
        return [base + int(s) for s in seg.a.cs_idx[seg.a.cs_ptr[pos]:seg.a.cs_ptr[pos + 1]]]

    def sentence(self, sentence_id: int) -> Sentence:
        seg, pos = self._split(int(sentence_id), self.sentence_base)
        row = self.store._reader().execute(
            "SELECT d.doc_id, s.start, s.end, substr(d.text, s.start + 1, s.end - s.start), s.search_text "
            "FROM sentences s JOIN documents d ON d.doc_key = s.doc_key WHERE s.seg = ? AND s.pos = ?",
            (seg.seg, pos)).fetchone()
        if row is None:
            raise KeyError(sentence_id)
        return Sentence(*row)

    def neighbour(self, sentence_id: int, step: int) -> int | None:
        seg, pos = self._split(int(sentence_id), self.sentence_base)
        other = pos + step
        if not 0 <= other < seg.n_sentences or seg.a.sentence_docs[other] != seg.a.sentence_docs[pos]:
            return None
        return int(sentence_id) + step

    def sentence_vectors(self, sentence_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(sentence_ids, dtype=np.int64)
        dim = self.settings.dim
        out = np.zeros((len(ids), dim), dtype=np.float32)
        where = self._locate(ids, self.sentence_base)
        for i in np.unique(where):
            members = np.flatnonzero(where == i)
            out[members] = self.segments[i].rows("sentences", ids[members] - self.sentence_base[i])
        return out

    def chunk_vectors(self, chunk_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(chunk_ids, dtype=np.int64)
        out = np.zeros((len(ids), self.settings.dim), dtype=np.float32)
        where = self._locate(ids, self.chunk_base)
        for i in np.unique(where):
            members = np.flatnonzero(where == i)
            out[members] = self.segments[i].rows("chunks", ids[members] - self.chunk_base[i])
        return out

    def all_chunks(self) -> tuple[np.ndarray, list[Chunk]]:
        """Every live chunk and its id, in id order: for evaluation baselines and
        calibration, which need the whole corpus; never on the query path."""
        ids, chunks = [], []
        for seg, pos, *row in self.store._reader().execute(
                "SELECT c.seg, c.pos, d.doc_id, c.start, c.end, substr(d.text, c.start + 1, c.end - c.start), "
                "c.section, c.context, c.search_text FROM chunks c JOIN documents d ON d.doc_key = c.doc_key "
                "ORDER BY c.seg, c.pos"):
            i = self._seg_index.get(seg)
            if i is not None:
                ids.append(int(self.chunk_base[i]) + pos)
                chunks.append(Chunk(*row))
        return np.array(ids, dtype=np.int64), chunks

    def document(self, doc_id: str) -> Document | None:
        cached = self._docs.get(doc_id)
        if cached is not None:
            return cached
        row = self.store._reader().execute(
            "SELECT doc_id, text, title, date, source, region, sections, content_hash FROM documents "
            "WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        sections = tuple(Section(**s) for s in json.loads(row[6]))
        return self._docs.put(doc_id, Document(row[0], row[1], row[2], row[3], row[4], row[5], sections, row[7]))

    def document_info(self, doc_id: str) -> DocumentInfo | None:
        cached = self._infos.get(doc_id)
        if cached is not None:
            return cached
        row = self.store._reader().execute(
            "SELECT doc_id, title, date, source, region, chunks, content_hash FROM documents WHERE doc_id = ?",
            (doc_id,)).fetchone()
        return None if row is None else self._infos.put(doc_id, DocumentInfo(*row))

    def documents(self) -> list[DocumentInfo]:
        if self._all_infos is None:
            self._all_infos = [DocumentInfo(*r) for r in self.store._reader().execute(
                "SELECT doc_id, title, date, source, region, chunks, content_hash FROM documents ORDER BY doc_id")]
        return self._all_infos

    def term_stats(self) -> TermStats:
        return TermStats(self._df, self.n_chunks)


def _best(scores: list[np.ndarray], ids: list[np.ndarray], depth: int) -> np.ndarray:
    """The ids of the ``depth`` best scores across segments, best first.

    >>> _best([np.array([0.9, 0.1]), np.array([0.5])], [np.array([1, 2]), np.array([7])], 2).tolist()
    [1, 7]
    """
    if not ids:
        return np.zeros(0, np.int64)
    order = np.argsort(-np.concatenate(scores), kind="stable")
    return np.concatenate(ids)[order[:depth]]
