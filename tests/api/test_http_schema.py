"""Schemathesis over a live `qa serve`, from outside, the way an integrator's run sees it.

Every check is on (``--checks all``: status codes, content types, response schemas,
positive data accepted and negative data refused, undeclared methods answered 405
with an ``Allow`` header, …), writes carry the API key, the seed is fixed and the
examples per operation bounded so the run stays well under a minute. The server is
the real thing: a child process with the chat UI mounted at / (whose catch-all the
API's routing and error shape must survive), over a copy of the tiny index in
tmp_path, so uploads and deletions touch nothing else.

One exception is configured, for one operation and one status: an upload whose bytes
are not a readable document (a PNG, random bytes, a PDF with no text) is refused with
400, which the document states but a JSON Schema cannot express for file content, so
``positive_data_acceptance`` counts 400 as expected for ``POST /v1/documents`` only.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import API_KEY
from test_http_server import qa_serve

pytestmark = pytest.mark.server

SEED = 20261203
EXAMPLES = 25  # per operation; ~1,100 requests in all

CONFIG = """
[[operations]]
include-name = "POST /v1/documents"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"""


def test_schemathesis_all_checks_against_the_live_server(pipeline, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with qa_serve(pipeline.index_dir, pipeline.corpus_dir(), QA_API_KEY=API_KEY) as (base, _):
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run",
             f"{base}/openapi.json", "--checks", "all", "--header", f"X-API-Key: {API_KEY}",
             "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--workers", "1",
             "--request-timeout", "60"],
            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-12000:]
    # The run really tested every operation of the document (a schema that failed to
    # load, or filters that matched nothing, would also exit 0 with nothing tested).
    assert "Tested: 10" in out and " passed" in out and "failures" not in out.lower(), out[-4000:]
