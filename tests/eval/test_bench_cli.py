"""`qa bench --quick` smoke run on a tiny corpus (report written; no timing assertions)."""

import json

import numpy as np

from qa.cli import main
from qa.eval.bench import BenchPlan, recommend, synthetic_vectors


def test_bench_quick_writes_report(tmp_path, monkeypatch, tiny_corpus, capsys):
    monkeypatch.setenv("QA_EMBEDDER", "hash")
    monkeypatch.setenv("QA_CORPUS_DIR", str(tiny_corpus))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "unused-index"))
    monkeypatch.setenv("QA_CHUNK_SIZE", "60")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "10")
    report = tmp_path / "bench"
    assert main(["bench", "--quick", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "## Index build" in out and "## Scale" in out
    result = json.loads((report / "bench.json").read_text(encoding="utf-8"))
    assert (report / "bench.md").read_text(encoding="utf-8").startswith("# qa bench")
    build = result["build"]
    assert build["documents"] == 3 and build["embedded_texts"] == build["chunks"] + build["sentences"]
    assert set(build["stages_s"]) >= {"scan", "read", "chunk", "embed", "tokenize", "write", "merge"}
    assert result["reindex"]["nothing_embedded"] is True
    assert result["reindex"]["cli_exit_codes"] == [0, 0]
    latency = result["queries"]["latency_ms"]
    assert {"search:dense", "search:bm25", "search:hybrid", "search:peer"} <= set(latency)
    http = result["http"]
    assert "skipped" not in http, http
    assert all(row["errors"] == 0 for row in http["sequential_ms"].values())
    rows = result["scale"]["sizes"]["2000"]
    assert [r["kind"] for r in rows] == ["data", "flat", "ivf"]
    assert all("error" not in r and r["peak_rss_mb"] > 0 for r in rows)
    assert rows[1]["runs"][0]["recall@10"] == 1.0
    assert all(0.0 <= run["recall@10"] <= 1.0 for run in rows[2]["runs"])
    # the last run probes every list of the segment: exhaustive
    # over 8-bit codes, so nearly every true neighbour is found
    assert rows[2]["runs"][-1]["recall@10"] >= 0.95
    assert not (tmp_path / "unused-index").exists()  # the bench never touches the configured index


def test_synthetic_vectors_are_clustered_and_seeded():
    v = synthetic_vectors(2000, 384, seed=3, clusters=20)
    assert v.dtype == np.float32 and v.shape == (2000, 384)
    assert np.array_equal(v, synthetic_vectors(2000, 384, seed=3, clusters=20))
    # the nearest neighbour is far closer than a random pair: structure for ANN to find
    sims = v[:50] @ v.T
    np.fill_diagonal(sims[:, :50], -1)
    assert sims.max(axis=1).mean() > 0.4 > abs(float((v[:50] @ v[1000:1050].T).mean())) + 0.2


def test_recommend_reads_the_figures():
    sizes = {"1000": [
        {"kind": "flat", "runs": [{"setting": "exact", "p50": 2.0, "recall@10": 1.0}]},
        {"kind": "hnsw", "runs": [{"setting": "efSearch=16", "p50": 0.2, "recall@10": 0.9},
                                  {"setting": "efSearch=32", "p50": 0.4, "recall@10": 0.97}]},
        {"kind": "ivf", "runs": [{"setting": "nprobe=1", "p50": 0.1, "recall@10": 0.5}]},
    ]}
    lines = recommend(sizes)
    assert lines[0] == ("1,000 vectors: hnsw reaches recall@10 0.970 at efSearch=32 with p50 0.40 ms "
                        "(5.0× faster than flat 2.0 ms)")
    assert lines[1] == "1,000 vectors: ivf stays below recall@10 0.95 (best 0.5 at nprobe=1)"


def test_quick_plan_is_small():
    quick, full = BenchPlan.for_run(True), BenchPlan.for_run(False)
    assert max(quick.scale_sizes) < 10_000 and full.scale_sizes == (100_000, 1_000_000)
    assert full.scale_queries >= 200 and quick.scale_queries >= 200


def test_bench_scale_part_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QA_EMBEDDER", "hash")
    monkeypatch.setenv("QA_CORPUS_DIR", str(tmp_path / "no-corpus-needed"))
    report = tmp_path / "bench"
    assert main(["bench", "--quick", "--part", "scale", "--report", str(report)]) == 0
    result = json.loads((report / "bench.json").read_text(encoding="utf-8"))
    assert result["part"] == "scale" and "build" not in result and "queries" not in result
    assert [r["kind"] for r in result["scale"]["sizes"]["2000"]] == ["data", "flat", "ivf"]
    assert "## Index build" not in capsys.readouterr().out


def test_bench_growth_and_faults_parts_report_what_they_measure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QA_EMBEDDER", "hash")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "unused-index"))
    report = tmp_path / "growth"
    assert main(["bench", "--quick", "--part", "growth", "--sizes", "20", "--report", str(report)]) == 0
    (row,) = json.loads((report / "bench.json").read_text(encoding="utf-8"))["growth"]["sizes"]
    assert row["documents"] == 20 and "error" not in row and "error" not in row["server"]
    assert row["server"]["ready_s"] > 0 and row["server"]["retrieve_ms"]["n"] == 40
    assert set(row["server"]["write_s"]) == {"upload", "replace", "delete"} and not row["server"].get("write_errors")
    assert row["in_process"]["recall@10"]["strict"] == 1.0  # small segments are searched exactly
    assert 0.0 < row["in_process"]["recall@10_ivf_everywhere"]["tie_aware"] <= 1.0
    assert row["index_mb"] > 0 and row["reindex_noop_s"] > 0
    assert (report / "growth.png").stat().st_size > 10_000  # the chart beside the table
    report = tmp_path / "faults"
    assert main(["bench", "--quick", "--part", "faults", "--report", str(report)]) == 0
    faults = json.loads((report / "bench.json").read_text(encoding="utf-8"))["faults"]
    kills = faults["kills"]
    assert kills["trials"] == 4 and kills["index_failed_to_load"] == 0 and kills["acknowledged_lost"] == 0
    assert kills["corpus_index_disagreements"] == 0 and kills["leftover_files"] == 0
    assert faults["readers"]["idle"]["errors"] == 0 and faults["readers"]["during uploads"]["errors"] == 0
    assert "## Growth" in capsys.readouterr().out
    assert not (tmp_path / "unused-index").exists()
