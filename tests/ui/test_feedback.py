"""Feedback storage (SQLite in tmp_path) and its JSON-lines export."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from qa.cli import main as cli_main
from qa.errors import InputError
from qa.ui.feedback import FeedbackStore, export_feedback, vote_from_like

CITES = [{"n": 1, "doc_id": "002.txt", "title": "宜昌", "start": 10, "end": 30, "quote": "打造“10分钟”急救圈。"}]


def test_votes_round_trip_through_sqlite_and_export_in_order(tmp_path):
    db = tmp_path / "fb" / "feedback.sqlite3"  # parent folder is created
    store = FeedbackStore(db)
    t0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    assert store.record("宜昌打造多少分钟急救圈?", "“10分钟”[1]", CITES, "up", created_at=t0) == 1
    assert store.record("那武汉呢?", "Not found", [], "down", created_at=t0 + timedelta(minutes=1)) == 2
    assert store.count() == 2

    out = io.StringIO()
    assert export_feedback(db, out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "question": "宜昌打造多少分钟急救圈?",
        "answer": "“10分钟”[1]",
        "citations": CITES,
        "vote": "up",
        "created_at": "2024-05-01T08:00:00+00:00",
    }
    assert second["vote"] == "down" and second["citations"] == []
    assert "宜昌" in lines[0]  # written as UTF-8 text, not \\u escapes


def test_local_times_are_stored_in_utc(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    beijing = timezone(timedelta(hours=8))
    store.record("q", "a", [], "up", created_at=datetime(2024, 5, 1, 16, 30, tzinfo=beijing))
    out = io.StringIO()
    export_feedback(tmp_path / "f.sqlite3", out)
    assert json.loads(out.getvalue())["created_at"] == "2024-05-01T08:30:00+00:00"


def test_unknown_vote_is_rejected(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    with pytest.raises(InputError, match="vote"):
        store.record("q", "a", [], "meh")
    assert store.count() == 0


def test_export_of_a_missing_database_writes_nothing_and_creates_nothing(tmp_path):
    out = io.StringIO()
    assert export_feedback(tmp_path / "none.sqlite3", out) == 0
    assert out.getvalue() == ""
    assert not (tmp_path / "none.sqlite3").exists()


def test_export_of_a_foreign_sqlite_file_says_what_is_wrong(tmp_path):
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(InputError, match="not a feedback database"):
        export_feedback(other, io.StringIO())


@pytest.mark.parametrize(
    ("liked", "vote"),
    [(True, "up"), (False, "down"), ("Like", "up"), ("Dislike", "down"), (None, None), ("", None), ("Other", None)],
)
def test_like_event_values_map_to_votes(liked, vote):
    assert vote_from_like(liked) == vote


def test_cli_feedback_export_writes_jsonl_file(tmp_path, capsys):
    db = tmp_path / "feedback.sqlite3"
    FeedbackStore(db).record("宜昌打造多少分钟急救圈?", "“10分钟”[1]", CITES, "up")
    target = tmp_path / "out.jsonl"
    code = cli_main(["feedback", "export", "--feedback-db", str(db), "-o", str(target)])
    assert code == 0
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["question"] for r in rows] == ["宜昌打造多少分钟急救圈?"]
    assert set(rows[0]) == {"question", "answer", "citations", "vote", "created_at"}
    assert "exported 1 feedback records" in capsys.readouterr().err
