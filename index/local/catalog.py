"""The local store's catalogue: one SQLite file that holds every row and commits writes.

SQLite gives the store its transactions (a write is one ``BEGIN IMMEDIATE`` …
``COMMIT``: a kill at any instant leaves it entirely in or out), its isolation (in
WAL mode a reader's transaction sees the state of its start while a writer commits)
and indexed look-ups by key, so nothing has to be parsed when an index is opened.

Tables (text is stored once, in ``documents``; chunks and sentences keep offsets)::

    meta        key → value: format, embedder, dim, chunk settings, generation, counts
    documents   doc_key, doc_id, file stamp, title/date/source/region, sections, text,
                chunk count and per-document term counts (to undo them on delete)
    segments    the live vector segments (folders under segments/) and their sizes
    chunks      (seg, pos) → doc_key, offsets, section, context line, search text
    sentences   (seg, pos) → doc_key, offsets, search text
    terms       BM25 document frequency of each term over live chunks
    postings    (term, seg) → packed chunk positions and term frequencies
    tombstones  (seg, kind, pos) of deleted rows still inside a segment
    retired     segments merged away, deleted from disk once no reader can need them
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

FORMAT = 2
CATALOG = "catalog.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(
    doc_key INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    title TEXT NOT NULL, date TEXT, source TEXT, region TEXT, sections TEXT NOT NULL,
    text TEXT NOT NULL, chunks INTEGER NOT NULL, sentences INTEGER NOT NULL,
    length INTEGER NOT NULL, terms TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments(seg INTEGER PRIMARY KEY, chunks INTEGER NOT NULL,
    sentences INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(seg INTEGER NOT NULL, pos INTEGER NOT NULL,
    doc_key INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    section TEXT NOT NULL, context TEXT NOT NULL, search_text TEXT NOT NULL,
    PRIMARY KEY(seg, pos)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_key);
CREATE TABLE IF NOT EXISTS sentences(seg INTEGER NOT NULL, pos INTEGER NOT NULL,
    doc_key INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    search_text TEXT NOT NULL, PRIMARY KEY(seg, pos)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sentences_by_doc ON sentences(doc_key);
CREATE TABLE IF NOT EXISTS terms(term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS postings(term TEXT NOT NULL, seg INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY(term, seg)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS postings_by_seg ON postings(seg);
CREATE TABLE IF NOT EXISTS tombstones(seg INTEGER NOT NULL, kind INTEGER NOT NULL, pos INTEGER NOT NULL,
    PRIMARY KEY(seg, kind, pos)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retired(seg INTEGER PRIMARY KEY, at REAL NOT NULL);
"""

CHUNK, SENTENCE = 0, 1  # tombstones.kind


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    ``synchronous=FULL`` makes a commit durable before a write is acknowledged: an
    upload the client was told about survives a power cut, not only a kill.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
    for key in ("generation", "n_chunks", "n_sentences", "total_length", "next_seg"):
        conn.execute("INSERT OR IGNORE INTO meta VALUES (?, '0')", (key,))


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def set_meta(conn: sqlite3.Connection, **values: object) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
