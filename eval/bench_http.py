"""Load benchmark of the HTTP API: concurrent ``POST /v1/retrieve`` clients, idle and
while an upload is being indexed.

:func:`run_http_bench` drives an already running server; :func:`main` starts
``qa serve`` itself on a free loopback port over a *copy* of an index (and of its
corpus, so uploads never touch the original), runs the scenarios a few times and
prints the medians as a Markdown table::

    python -m qa.eval.bench_http --index-dir /tmp/me/index --repeats 3 --report out/

Each client is one keep-alive connection (all on one asyncio loop, so that the load
generator takes little of the CPU it shares with the server) sending questions
from the gold sets back to back (closed loop: a client sends its next request when the last
one is answered). Only loopback addresses are accepted, every run is bounded in time
and in requests. The query-vector cache of ``qa serve`` is switched off for the
"uncached" rows and on for the "cached" ones (questions repeat, so nearly every
query then skips the model).

>>> percentile([10.0, 20.0, 30.0, 40.0], 50), percentile([10.0, 20.0, 30.0, 40.0], 99)
(20.0, 40.0)
>>> summarise([5.0, 15.0, 25.0], errors=1, elapsed_s=2.0)
HttpBenchResult(requests=4, errors=1, p50_ms=15.0, p95_ms=25.0, p99_ms=25.0, rps=1.5, uploads=0, upload_coverage=0.0)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace  # noqa: F401 (replace: used in a docstring example)
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlsplit

from qa.errors import InputError
from qa.eval.processes import free_port, stop

REPO = Path(__file__).resolve().parents[1]
# The shared dev set sits beside the clone (CI puts shared/ next to it); --gold overrides.
GOLD_SETS = (REPO.parent / "shared" / "eval" / "dev.jsonl", REPO / "eval" / "gold.jsonl")
DEFAULT_UPLOAD = REPO / "data" / "sample" / "002_c1eac3b41c0a86c0.txt"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_DURATION_S = 600
MAX_CLIENTS = 64


@dataclass(frozen=True)
class HttpBenchResult:
    """One run: successful requests, failed ones, latency percentiles, throughput."""

    requests: int  # all requests sent, failed ones included
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float  # successful requests per second
    uploads: int = 0  # uploads completed within the run (during_upload runs)
    upload_coverage: float = 0.0  # share of the run during which an upload was being sent or indexed


# ---------------------------------------------------------------- pure parts


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% of values at or below it)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise(latencies_ms: Sequence[float], errors: int, elapsed_s: float, uploads: int = 0,
              upload_coverage: float = 0.0) -> HttpBenchResult:
    return HttpBenchResult(
        requests=len(latencies_ms) + errors,
        errors=errors,
        p50_ms=round(percentile(latencies_ms, 50), 2),
        p95_ms=round(percentile(latencies_ms, 95), 2),
        p99_ms=round(percentile(latencies_ms, 99), 2),
        rps=round(len(latencies_ms) / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        uploads=uploads,
        upload_coverage=round(upload_coverage, 3),
    )


def coverage(intervals: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Share of [start, end] covered by the (non-overlapping) intervals.

    >>> coverage([(0.0, 2.0), (3.0, 9.0)], 1.0, 5.0)
    0.75
    """
    if end <= start:
        return 0.0
    covered = sum(max(0.0, min(b, end) - max(a, start)) for a, b in intervals)
    return covered / (end - start)


def median_result(results: Sequence[HttpBenchResult]) -> HttpBenchResult:
    """Field-wise median of repeated runs (errors: the total, so none is hidden).

    >>> a = HttpBenchResult(100, 0, 10, 20, 30, 50.0)
    >>> median_result([a, replace(a, p50_ms=12), replace(a, p50_ms=30, errors=1)]).p50_ms
    12
    """
    med = lambda name: statistics.median(getattr(r, name) for r in results)  # noqa: E731
    return HttpBenchResult(
        requests=int(med("requests")), errors=sum(r.errors for r in results),
        p50_ms=med("p50_ms"), p95_ms=med("p95_ms"), p99_ms=med("p99_ms"), rps=med("rps"),
        uploads=int(med("uploads")), upload_coverage=med("upload_coverage"),
    )


def markdown_table(rows: Sequence[tuple[str, str, HttpBenchResult]]) -> str:
    lines = ["| scenario | server: query cache[, embedder] | requests | errors | p50 ms | p95 ms | p99 ms | req/s | upload in flight |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for scenario, cache, r in rows:
        busy = f"{r.upload_coverage:.0%} ({r.uploads} done)" if scenario != "idle" else "-"
        lines.append(f"| {scenario} | {cache} | {r.requests} | {r.errors} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
                     f"{r.p99_ms:.1f} | {r.rps:.1f} | {busy} |")
    return "\n".join(lines)


def gold_questions(paths: Sequence[Path] = GOLD_SETS) -> list[str]:
    from qa.eval.gold import load_gold

    questions = [item.question for path in paths if Path(path).exists() for item in load_gold(path)]
    if not questions:
        raise InputError("no gold questions found", hint=f"pass --gold FILE (looked in {', '.join(map(str, paths))})")
    return questions


# ---------------------------------------------------------------- driving a server


def _loopback(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or parts.port is None:
        raise InputError(f"{base_url} is not a loopback http URL with a port",
                         hint="this benchmark only talks to http://127.0.0.1:PORT")
    return parts.hostname, parts.port


def _multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class _Uploader(threading.Thread):
    """Uploads ``content`` under fresh names, one after another, until stopped."""

    def __init__(self, host: str, port: int, content: bytes, api_key: str | None, prefix: str):
        super().__init__(name="bench-uploader", daemon=True)
        self.host, self.port, self.content, self.api_key, self.prefix = host, port, content, api_key, prefix
        self.stop = threading.Event()
        self.sent = threading.Event()  # the first upload's body is on the wire
        self.done: list[str] = []
        self.failures: list[str] = []
        self.intervals: list[tuple[float, float]] = []  # perf_counter spans of each upload request

    def run(self) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            name = f"{self.prefix}-{n}.txt"
            body, content_type = _multipart(name, self.content)
            headers = {"Content-Type": content_type}
            if self.api_key:
                headers["X-API-Key"] = self.api_key
            conn = http.client.HTTPConnection(self.host, self.port, timeout=900)
            began = time.perf_counter()
            try:
                conn.request("POST", "/v1/documents", body=body, headers=headers)
                self.sent.set()
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                if response.status == 201:
                    self.done.append(json.loads(text)["doc_id"])
                else:
                    self.failures.append(f"{response.status} {text[:200]}")
                    return
            except OSError as exc:
                self.failures.append(repr(exc))
                self.sent.set()
                return
            finally:
                self.intervals.append((began, time.perf_counter()))
                conn.close()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of an HTTP/1.1 response head.

    >>> parse_head(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nConnection: close\\r\\n\\r\\n")
    (200, {'content-length': '2', 'connection': 'close'})
    """
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one response; chunked bodies are joined."""
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        body = b"".join(parts)
    else:
        body = await reader.read()
    return status, body, headers.get("connection", "").lower() != "close"


async def _drive(host: str, port: int, bodies: Sequence[bytes], clients: int, deadline: float, max_requests: int,
                 timeout_s: float) -> list[tuple[list[float], int]]:
    """``clients`` keep-alive connections on one event loop, each sending its next
    request when the last is answered. The loop costs the client well under a
    millisecond per request, so the server, not the load generator, sets the pace on
    a machine they share."""
    budget = itertools.count()  # shared request counter: the max_requests bound

    async def client(i: int) -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        reader = writer = None
        for j in itertools.count():
            if time.perf_counter() >= deadline or next(budget) >= max_requests:
                break
            body = bodies[(i * 17 + j) % len(bodies)]
            request = (f"POST /v1/retrieve HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            began = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
                writer.write(request)
                status, data, keep = await asyncio.wait_for(_read_response(reader), timeout_s)
                ok = status == 200 and isinstance(json.loads(data).get("hits"), list)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError, IndexError):
                ok, keep = False, False
            if ok:
                latencies.append((time.perf_counter() - began) * 1000)
            else:
                errors += 1
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()
        return latencies, errors

    return list(await asyncio.gather(*(client(i) for i in range(clients))))


def run_http_bench(
    base_url: str,
    duration_s: float = 30,
    clients: int = 8,
    during_upload: bool = False,
    questions: Sequence[str] | None = None,
    k: int = 5,
    upload_doc: Path = DEFAULT_UPLOAD,
    api_key: str | None = None,
    timeout_s: float = 30.0,
    max_requests: int = 1_000_000,
    cleanup: bool = True,
) -> HttpBenchResult:
    """``clients`` connections POST /v1/retrieve back to back for ``duration_s`` seconds.

    With ``during_upload`` a copy of ``upload_doc`` is uploaded (under a new name,
    again and again while the window lasts) and the clients start once the first
    upload is on the wire; the copies are deleted afterwards when ``cleanup``.
    A request counts as an error unless it returns 200 with a ``hits`` list.
    """
    host, port = _loopback(base_url)
    if not 0 < duration_s <= MAX_DURATION_S:
        raise InputError(f"duration must be in (0, {MAX_DURATION_S}] s, got {duration_s}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise InputError(f"clients must be in 1..{MAX_CLIENTS}, got {clients}")
    questions = list(questions or gold_questions())
    uploader = None
    if during_upload:
        uploader = _Uploader(host, port, Path(upload_doc).read_bytes(), api_key, f"bench-upload-{uuid.uuid4().hex[:8]}")
        uploader.start()
        if not uploader.sent.wait(60) or uploader.failures:
            raise RuntimeError(f"the upload could not be started: {uploader.failures}")

    bodies = [json.dumps({"query": q, "k": k}, ensure_ascii=False).encode() for q in questions]
    start = time.perf_counter()
    per_client = asyncio.run(_drive(host, port, bodies, clients, start + duration_s, max_requests, timeout_s))
    end = time.perf_counter()
    elapsed = end - start
    uploads, busy = 0, 0.0
    if uploader is not None:
        uploads = len(uploader.done)  # completed within the window
        uploader.stop.set()
        uploader.join(900)
        busy = coverage(uploader.intervals, start, end)
        if uploader.failures:
            print(f"warning: upload failed: {uploader.failures[0]}", file=sys.stderr)
        if cleanup:
            _delete(host, port, uploader.done, api_key)
    return summarise([x for lat, _ in per_client for x in lat], sum(e for _, e in per_client), elapsed,
                     uploads, busy)


def _delete(host: str, port: int, doc_ids: Sequence[str], api_key: str | None) -> None:
    for doc_id in doc_ids:
        conn = http.client.HTTPConnection(host, port, timeout=900)
        try:
            conn.request("DELETE", f"/v1/documents/{doc_id}", headers={"X-API-Key": api_key or ""})
            conn.getresponse().read()
        finally:
            conn.close()


# ---------------------------------------------------------------- qa serve lifecycle



def prepare_workdir(index_dir: Path, workdir: Path) -> tuple[Path, Path, str]:
    """Copy the index and its corpus into ``workdir`` and point the copy at the copied
    corpus (an incremental re-index: nothing is re-embedded). Returns (index, corpus, embedder)."""
    from qa.index.local.store import LocalStore
    from qa.pipeline import Pipeline
    from qa.settings import Settings

    source = LocalStore(index_dir)
    m = source.index_settings()
    corpus_src = Path(source.corpus_dir())
    if not corpus_src.is_dir():
        raise InputError(f"the index's corpus folder {corpus_src} does not exist",
                         hint="benchmark an index whose corpus is still on disk")
    index_copy, corpus_copy = workdir / "index", workdir / "corpus"
    shutil.copytree(index_dir, index_copy, ignore=shutil.ignore_patterns(".write.lock", ".tmp-*"))
    shutil.copytree(corpus_src, corpus_copy, copy_function=shutil.copy2)  # keeps stamps: nothing is re-read
    settings = Settings(index_dir=index_copy, corpus_dir=corpus_copy, embedder=m.embedder,
                        chunk_size=m.chunk_size, chunk_overlap=m.chunk_overlap)
    report = Pipeline(settings).index(corpus_copy)
    if report.embedded_texts:
        raise RuntimeError(f"pointing the copy at its corpus re-embedded {report.embedded_texts} texts")
    return index_copy, corpus_copy, m.embedder


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    api_key: str


def start_server(index_dir: Path, corpus_dir: Path, embedder: str, cache_size: int,
                 extra_env: dict[str, str] | None = None, log: Path | None = None) -> Server:
    from qa.index.local.store import LocalStore

    m = LocalStore(index_dir).index_settings()
    port, key = free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_CORPUS_DIR": str(corpus_dir), "QA_EMBEDDER": embedder,
           "QA_CHUNK_SIZE": str(m.chunk_size), "QA_CHUNK_OVERLAP": str(m.chunk_overlap),
           "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "QA_API_KEY": key,
           "QA_QUERY_CACHE_SIZE": str(cache_size), "GRADIO_ANALYTICS_ENABLED": "False", **(extra_env or {})}
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=env, stdout=out, stderr=out)
    server = Server(f"http://127.0.0.1:{port}", process, key)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"qa serve exited with {process.returncode} (log: {log})")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return server
            conn.close()
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError("qa serve did not become ready within 300 s")


def stop_server(server: Server) -> None:
    stop(server.process, timeout_s=30)


# ---------------------------------------------------------------- main


def run_scenarios(index_dir: Path, duration_s: float, clients: int, repeats: int, caches: Sequence[int],
                  upload_doc: Path, log: Path | None = None,
                  extra_env: dict[str, str] | None = None,
                  loads: list[float] | None = None,
                  embedders: Sequence[str] = (),
                  gold: Sequence[Path] = GOLD_SETS) -> Iterator[tuple[str, str, HttpBenchResult, list]]:
    """Yield (scenario, configuration label, median result, per-run results) per
    scenario and configuration; the 1-minute load average after each run is appended
    to ``loads`` (the machine is shared).

    A configuration is a query-cache size, times each of ``embedders`` if given (else
    the index's own). Each gets its own server over its own copy of the index, all
    started first; the runs then take turns (A, B, A, B, ...), so that a change in the
    machine's load falls on every configuration alike and their ratio holds.
    """
    loads = loads if loads is not None else []
    questions = gold_questions(gold)
    with tempfile.TemporaryDirectory(prefix="qa-bench-http-") as tmp:
        servers: dict[str, Server] = {}
        try:
            for name in list(embedders) or [None]:
                for cache in caches:
                    work = Path(tmp) / f"server{len(servers)}"
                    work.mkdir()
                    index_copy, corpus_copy, index_embedder = prepare_workdir(Path(index_dir), work)
                    label = (f"on ({cache})" if cache else "off") + (f", {name}" if name else "")
                    servers[label] = start_server(index_copy, corpus_copy, name or index_embedder, cache,
                                                  extra_env, log)
                    # Warm the process (first requests pay for lazy imports), not measured.
                    run_http_bench(servers[label].base_url, duration_s=min(5, duration_s), clients=clients,
                                   questions=questions)
            for scenario, upload in (("idle", False), ("during upload", True)):
                runs: dict[str, list[HttpBenchResult]] = {label: [] for label in servers}
                for _ in range(repeats):
                    for label, server in servers.items():
                        runs[label].append(run_http_bench(server.base_url, duration_s, clients, during_upload=upload,
                                                          questions=questions, upload_doc=upload_doc,
                                                          api_key=server.api_key))
                        loads.append(os.getloadavg()[0])
                        print(f"  {scenario:13s} {label:24s} {runs[label][-1]} load {loads[-1]:.1f}", file=sys.stderr)
                for label in servers:
                    yield scenario, label, median_result(runs[label]), runs[label]
        finally:
            for server in servers.values():
                stop_server(server)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.eval.bench_http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", required=True, type=Path, help="index to benchmark (copied, never written)")
    parser.add_argument("--duration", type=float, default=30, help="seconds per run (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario; the median is reported")
    parser.add_argument("--cache", choices=["both", "off", "on"], default="both",
                        help="query-vector cache of the server (default: both, uncached first)")
    parser.add_argument("--upload-doc", type=Path, default=DEFAULT_UPLOAD, help="document uploaded during the runs")
    parser.add_argument("--omp-threads", type=int, help="OMP_NUM_THREADS for the server (default: inherited)")
    parser.add_argument("--embedder", nargs="+", default=[], metavar="NAME",
                        help="serve with each of these embedders in turn, e.g. e5-small-q4 e5-small-q4:exact "
                             "(default: the index's); they must share the index's vector space")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write bench_http.md and bench_http.json here")
    parser.add_argument("--gold", type=Path, nargs="+", default=list(GOLD_SETS), metavar="FILE",
                        help="gold files whose questions are sent (default: ../shared/eval/dev.jsonl from the "
                             "repository root, and eval/gold.jsonl)")
    args = parser.parse_args(argv)

    def interrupted(signum, frame):  # SIGTERM: stop the server and delete the copies, as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    if not 1 <= args.repeats <= 10:
        parser.error("--repeats must be 1..10")
    caches = {"both": [0, 1024], "off": [0], "on": [1024]}[args.cache]
    env = {"OMP_NUM_THREADS": str(args.omp_threads)} if args.omp_threads else None
    rows, raw = [], []
    log = (args.report / "bench_http_server.log") if args.report else None
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
    loads: list[float] = []
    for scenario, label, result, runs in run_scenarios(args.index_dir, args.duration, args.clients, args.repeats,
                                                       caches, args.upload_doc, log, env, loads, args.embedder,
                                                       args.gold):
        rows.append((scenario, label, result))
        raw.append({"scenario": scenario, "server": label, "median": asdict(result),
                    "runs": [asdict(r) for r in runs], "load_averages": loads[-len(runs):]})
    table = markdown_table(rows)
    header = (f"{args.clients} concurrent clients, POST /v1/retrieve (k=5, hybrid), {args.duration:.0f} s per run, "
              f"median of {args.repeats} runs, the servers' runs taking turns; machine: {os.cpu_count()} cores, 1-min load average after the runs "
              f"{min(loads):.1f}-{max(loads):.1f}")
    print(header + "\n\n" + table)
    if args.report:
        (args.report / "bench_http.md").write_text(header + "\n\n" + table + "\n", encoding="utf-8")
        (args.report / "bench_http.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
