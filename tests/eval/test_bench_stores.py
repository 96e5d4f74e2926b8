"""`qa bench --part stores --quick`: both stores measured in one run, same hits, no-op re-index."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("milvus_lite", reason="the milvus extra is not installed: pip install 'qa-gov[milvus]'")

REPO = Path(__file__).resolve().parents[2]


def test_bench_stores_quick(tmp_path):
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "unused")}
    done = subprocess.run([sys.executable, "-m", "qa.cli", "bench", "--part", "stores", "--quick", "--embedder", "hash",
                           "--report", str(tmp_path / "r")], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    stores = json.loads((tmp_path / "r" / "bench.json").read_text())["stores"]
    n = stores["questions"]
    assert stores["same_hybrid_hits"] == f"{n} of {n}"
    for name in ("local", "milvus"):
        assert stores["reindex"][name]["nothing_embedded"]
        for call in ("search:dense", "search:bm25", "search:hybrid", "ask"):
            assert stores["latency_ms"][f"{name} {call}"]["n"] == n
    assert "Stores side by side" in (tmp_path / "r" / "bench.md").read_text()
