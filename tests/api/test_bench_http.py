"""eval/bench_http.py: the pure summaries, and a one-second smoke run against a real server."""

from __future__ import annotations

import math

import pytest
import requests
from apihelpers import uvicorn_thread
from conftest import API_KEY

from qa.api import create_app
from qa.errors import InputError
from qa.eval.bench_http import (
    HttpBenchResult,
    coverage,
    markdown_table,
    median_result,
    percentile,
    run_http_bench,
    summarise,
)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert math.isnan(percentile([], 50))


def test_summarise_and_median():
    result = summarise([10.0, 20.0, 30.0, 40.0], errors=2, elapsed_s=4.0, uploads=1)
    assert result == HttpBenchResult(requests=6, errors=2, p50_ms=20.0, p95_ms=40.0, p99_ms=40.0, rps=1.0, uploads=1)
    assert coverage([(0.0, 2.0), (3.0, 9.0)], 1.0, 5.0) == 0.75 and coverage([], 0.0, 1.0) == 0.0
    runs = [HttpBenchResult(100, 0, 10.0, 30.0, 50.0, 90.0), HttpBenchResult(120, 1, 14.0, 20.0, 70.0, 110.0),
            HttpBenchResult(80, 0, 12.0, 40.0, 60.0, 70.0)]
    med = median_result(runs)
    assert (med.requests, med.errors, med.p50_ms, med.p95_ms, med.p99_ms, med.rps) == (100, 1, 12.0, 30.0, 60.0, 90.0)
    table = markdown_table([("idle", "off", med)])
    assert table.splitlines()[2] == "| idle | off | 100 | 1 | 12.0 | 30.0 | 60.0 | 90.0 | - |"
    busy = markdown_table([("during upload", "off", summarise([1.0], 0, 1.0, uploads=2, upload_coverage=1.0))])
    assert busy.splitlines()[2].endswith("| 100% (2 done) |")


def test_only_loopback_and_bounded_runs():
    with pytest.raises(InputError):
        run_http_bench("http://example.com:8000", duration_s=1, questions=["x"])
    with pytest.raises(InputError):
        run_http_bench("http://127.0.0.1:9", duration_s=10_000, questions=["x"])
    with pytest.raises(InputError):
        run_http_bench("http://127.0.0.1:9", duration_s=1, clients=1000, questions=["x"])


@pytest.mark.server
def test_smoke_run_during_an_upload(pipeline, tmp_path):
    doc = tmp_path / "upload.txt"
    doc.write_text("黄石市应急管理通报\n\n黄石建成森林消防驿站27个。\n", encoding="utf-8")
    settings = pipeline.settings.model_copy(update={"api_key": API_KEY})
    before = {d.doc_id for d in pipeline.documents()}
    with uvicorn_thread(create_app(settings, pipeline, mount_ui=False)) as base:
        idle = run_http_bench(base, duration_s=1, clients=2, questions=["宜昌急救圈", "How many red grid stations?"])
        busy = run_http_bench(base, duration_s=1, clients=2, during_upload=True, questions=["宜昌急救圈"],
                              upload_doc=doc, api_key=API_KEY)
        after = {d["doc_id"] for d in requests.get(f"{base}/v1/documents", timeout=30).json()["documents"]}
    for result in (idle, busy):
        assert result.errors == 0 and result.requests > 0 and result.rps > 0
        assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
    assert busy.upload_coverage > 0 and after == before  # an upload was in flight; its copies deleted again
