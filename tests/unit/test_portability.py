"""No file of the repository names a path of one particular machine (team rule 8)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Built from pieces so that this file does not match itself.
_ROOTS = ("work", "root", "home", "Users", "tmp/pytest-of-")
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:" + "|".join(re.escape(r) for r in _ROOTS) + r")/"
                          r"|[A-Za-z]:\\\\?Users\\\\?")
# Folders that are never committed (virtual environments, caches, indexes).
_UNTRACKED = {".git", ".venv", ".qa", "__pycache__", ".pytest_cache", ".hypothesis", "node_modules"}


def tracked_files() -> list[Path]:
    """The files git tracks; outside a git checkout (an unpacked archive), every file
    below the repository except the folders that are never committed."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [REPO / name for name in out.decode("utf-8").split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in REPO.rglob("*") if p.is_file() and not _UNTRACKED & set(p.relative_to(REPO).parts)]


def machine_paths(text: str) -> list[str]:
    """The machine-specific absolute paths in ``text``.

    >>> machine_paths("see " + "/" + "home/ann/x.txt and ~/.cache/qa-gov and ../shared/eval/dev.jsonl") == ["/" + "home/"]
    True
    """
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def test_the_docstring_example_holds():
    import doctest

    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(machine_paths, "machine_paths", globs={"machine_paths": machine_paths}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0 and runner.summarize(verbose=False).attempted == 1


def test_the_pattern_catches_the_known_cases():
    slash = "/"
    for bad in (f"{slash}work{slash}shared/eval/dev.jsonl", f"x = '{slash}root{slash}.cache'",
                f"{slash}home{slash}dev/qa", "C:\\" + "Users\\dev\\qa"):
        assert machine_paths(bad), bad
    for good in ("../shared/eval/dev.jsonl", "~/.cache/qa-gov/index", "https://example.org/home/page",
                 "eval/gold.jsonl", "/nonexistent/index"):
        assert not machine_paths(good), good


def test_no_tracked_file_contains_a_machine_path():
    files = tracked_files()
    assert len(files) > 20 and any(p.name == "README.md" for p in files)  # the listing really ran
    found = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the work tree but not yet in the index
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (weights, images)
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            for hit in machine_paths(line):
                found.append(f"{path.relative_to(REPO)}:{lineno}: {hit} in {line.strip()[:120]}")
    assert not found, "absolute machine paths in the repository:\n" + "\n".join(found)


def test_eval_reports_name_the_gold_file_relative_to_the_repository():
    from qa.eval.report import portable_path

    beside = REPO.parent / "shared" / "eval" / "dev.jsonl"
    assert portable_path(str(beside)) == "../shared/eval/dev.jsonl"
    assert portable_path(str(REPO / "eval" / "gold.jsonl")) == "eval/gold.jsonl"
    assert not machine_paths(portable_path(str(beside)))


def test_bench_http_finds_the_shared_dev_set_beside_the_clone(capsys):
    import pytest

    from qa.eval.bench_http import GOLD_SETS, gold_questions, main

    assert GOLD_SETS[0] == REPO.parent / "shared" / "eval" / "dev.jsonl"
    assert GOLD_SETS[1] == REPO / "eval" / "gold.jsonl"
    assert len(gold_questions([REPO / "eval" / "gold.jsonl"])) >= 100  # what --gold FILE passes
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--gold" in capsys.readouterr().out
