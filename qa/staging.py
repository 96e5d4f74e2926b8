"""Uploads and deletions in flight: staged beside the corpus, committed with the index.

An upload is written to ``<corpus>/.qa-staging/<token>.part`` with an intent record
``<token>.json`` (what it is for, and the hash of its bytes); the index write that
holds it commits; only then is the file moved to its name in the corpus folder. A
deletion first moves the file out of the corpus into the staging folder, then
commits the index write, then removes it.

The rule when a crash cut one off (applied before the next write of any process,
and when ``qa serve`` starts): **a write that was not acknowledged did not happen**.
An intent record still present means the process died before it could reply (the
reply is sent only after the intent is removed), so the write is undone, whether
or not its index commit went through: the staged upload is dropped, a deleted file
is moved back, and the document's index entry is made to match the corpus folder
again (re-indexed from the file there, or removed). Nothing else may stay in the
staging folder. So the corpus folder and the index agree after any crash, and a
client that got no reply never finds its upload indexed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qa.durable import fsync_path, write_durably
from qa.faults import pause_point
from qa.ingest import content_hash

FOLDER = ".qa-staging"  # hidden: corpus scans never list it


class Staging:
    """The staging folder of one corpus folder."""

    def __init__(self, corpus: Path):
        self.corpus = Path(corpus)
        self.folder = self.corpus / FOLDER

    def _intent(self, op: str, name: str, digest: str = "") -> tuple[Path, Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:16]
        part, intent = self.folder / f"{token}.part", self.folder / f"{token}.json"
        # The short token, not the document's name, names staged files: however long
        # the name, these fit the file system's limit.
        tmp = self.folder / f"{token}.json.tmp"
        write_durably(tmp, json.dumps({"op": op, "name": name, "hash": digest}, ensure_ascii=False).encode())
        os.replace(tmp, intent)
        return part, intent

    @contextmanager
    def upload(self, name: str, content: bytes) -> Iterator[Path]:
        """Stage ``content``; the body indexes the yielded file; on success it becomes
        ``<corpus>/<name>``, on an exception it is dropped."""
        part, intent = self._intent("add", name, content_hash(content))
        try:
            write_durably(part, content)
            fsync_path(self.folder)
            yield part
        except BaseException:
            part.unlink(missing_ok=True)
            intent.unlink(missing_ok=True)
            raise
        pause_point("after-commit", self.corpus)
        os.replace(part, self.corpus / name)
        fsync_path(self.corpus)
        intent.unlink()

    @contextmanager
    def delete(self, doc_id: str) -> Iterator[None]:
        """Move the document's file aside; the body commits the deletion; on success
        the file is removed, on an exception it is put back."""
        target = self.corpus / doc_id
        part, intent = self._intent("delete", doc_id)
        moved = target.exists()
        if moved:
            os.replace(target, part)
            fsync_path(self.folder)
        try:
            yield
        except BaseException:
            if moved:
                os.replace(part, target)
            intent.unlink(missing_ok=True)
            raise
        pause_point("after-commit", self.corpus)
        part.unlink(missing_ok=True)
        intent.unlink()

    def recover(self) -> list[str]:
        """Undo every write a crash cut off; returns the names whose index entries must
        be made to match the corpus folder again (:meth:`Pipeline.recover` does that).

        >>> import tempfile
        >>> corpus = Path(tempfile.mkdtemp())
        >>> staging = Staging(corpus)
        >>> part, intent = staging._intent("add", "a.txt", "hash")
        >>> _ = part.write_bytes(b"never acknowledged")
        >>> staging.recover(), sorted(p.name for p in corpus.iterdir())
        (['a.txt'], [])
        """
        if not self.folder.exists():
            return []
        names = []
        for intent in sorted(self.folder.glob("*.json")):
            try:
                info = json.loads(intent.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                intent.unlink(missing_ok=True)
                continue
            part = intent.with_suffix(".part")
            name, target = info["name"], self.corpus / info["name"]
            if info["op"] == "delete" and part.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)  # the deletion never happened
            names.append(name)  # an upload's staged bytes go with the folder below
            intent.unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)  # staged uploads, stray parts, half-written intents
        return names
