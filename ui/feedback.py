"""Thumbs up/down on chat answers, kept in SQLite and exported as JSON lines.

Staff vote on answers in the chat UI; each vote is one row with the question, the
answer text, the citations (JSON) and the vote. ``qa feedback export`` turns the
rows into JSON lines that can be reviewed and promoted into gold-set items.

>>> import io, tempfile, pathlib
>>> db = pathlib.Path(tempfile.mkdtemp()) / "fb.sqlite3"
>>> store = FeedbackStore(db)
>>> store.record("宜昌打造多少分钟急救圈?", "10分钟 [1]", [{"n": 1, "doc_id": "a.txt"}], "up")
1
>>> out = io.StringIO()
>>> export_feedback(db, out)
1
>>> json.loads(out.getvalue())["vote"]
'up'
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence, TextIO

from qa.errors import InputError

VOTES = ("up", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    citations  TEXT NOT NULL,          -- JSON list of citation objects
    vote       TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    created_at TEXT NOT NULL           -- ISO 8601, UTC
)
"""


def vote_from_like(liked: Any) -> str | None:
    """Map a Gradio like-event value to a stored vote; ``None`` for "vote withdrawn".

    >>> vote_from_like(True), vote_from_like(False), vote_from_like("Dislike"), vote_from_like("")
    ('up', 'down', 'down', None)
    """
    if liked is True:
        return "up"
    if liked is False:
        return "down"
    text = str(liked or "").strip().lower()
    if text in ("like", "up", "👍"):
        return "up"
    if text in ("dislike", "down", "👎"):
        return "down"
    return None


class FeedbackStore:
    """One SQLite file; a connection per call so Gradio's worker threads can share it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn, conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(
        self,
        question: str,
        answer: str,
        citations: Sequence[dict],
        vote: str,
        created_at: datetime | None = None,
    ) -> int:
        """Store one vote and return its row id."""
        if vote not in VOTES:
            raise InputError(f"vote must be one of {', '.join(VOTES)}, got {vote!r}")
        when = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        row = (
            question,
            answer,
            json.dumps(list(citations), ensure_ascii=False),
            vote,
            when.isoformat(timespec="seconds"),
        )
        with self._lock, closing(self._connect()) as conn, conn:
            cursor = conn.execute(
                "INSERT INTO feedback (question, answer, citations, vote, created_at) VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid)

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])


def export_feedback(db_path: Path, out: TextIO) -> int:
    """Write every stored vote as one JSON object per line, oldest first; return the count.

    A missing database means nobody has voted yet: nothing is written and 0 returned.
    """
    db_path = Path(db_path)
    if not db_path.exists():
        return 0
    # Read-only: exporting must never create or alter the file.
    uri = db_path.resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        try:
            rows = conn.execute(
                "SELECT question, answer, citations, vote, created_at FROM feedback ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            raise InputError(
                f"{db_path} is not a feedback database ({exc})",
                hint="point --feedback-db at the file the chat UI writes",
            ) from exc
    for question, answer, citations, vote, created_at in rows:
        obj = {
            "question": question,
            "answer": answer,
            "citations": json.loads(citations),
            "vote": vote,
            "created_at": created_at,
        }
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return len(rows)
