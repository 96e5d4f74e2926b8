"""Durable file operations: what must be on disk before a write may be called done.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_durably(folder / "a.bin", b"x"); fsync_path(folder); (folder / "a.bin").read_bytes()
b'x'
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's entry list: a rename in it is then durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
