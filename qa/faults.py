"""Named instants of a write where a test can stop the process (kill -9 tests).

With ``QA_TEST_PAUSE=<name>`` in its environment, a process that reaches the point
called ``name`` creates the file ``<folder>/.paused-<name>`` and sleeps, so a test
can kill it at exactly that instant. Unset (always, outside tests) it costs one
dictionary look-up.

>>> pause_point("never-set", Path("."))  # no variable: returns at once
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINTS = ("segment-written", "before-commit", "after-commit")


def pause_point(name: str, folder: Path) -> None:
    if os.environ.get("QA_TEST_PAUSE") == name:
        (Path(folder) / f".paused-{name}").touch()
        time.sleep(3600)
