"""Benchmark inputs and timing helpers shared by notebooks 10 and 60.

Inputs are fixed-shape batches of real token ids with a full attention mask (every position
attended, as in TensorRT's BERT demo at a given sequence length), so every engine sees the same
shapes and the same work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nbutils.errors import NbUtilsError
from nbutils.timing import LatencyStats, time_callable


def synthetic_batch(batch: int, seq: int, *, vocab_size: int = 30522, seed: int = 0) -> dict[str, np.ndarray]:
    """A ``batch`` × ``seq`` BERT input: [CLS] random tokens [SEP], attention mask of ones, segment 0."""
    if batch <= 0 or seq < 2:
        raise NbUtilsError(f"invalid benchmark shape batch={batch}, seq={seq}", "use batch >= 1 and seq >= 2")
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": np.ones((batch, seq), dtype=np.int64),
            "token_type_ids": np.zeros((batch, seq), dtype=np.int64)}


def torch_latency(model: Any, tokenizer: Any = None, *, batches: Sequence[int] = (1,), seq: int = 128,
                  iterations: int = 50, warmup: int = 5) -> list[LatencyStats]:
    """PyTorch eager latency of ``model`` for each batch size at sequence length ``seq``.

    Timed where the model is: CPU wall clock, or CUDA events with the inputs already on the GPU.
    """
    import torch

    from nbutils.device import model_device, to_device
    from nbutils.timing import time_cuda

    device = model_device(model)
    timer = time_cuda if device.type == "cuda" else time_callable
    vocab = getattr(tokenizer, "vocab_size", None) or model.config.vocab_size
    out = []
    for b in batches:
        feed = to_device(synthetic_batch(int(b), seq, vocab_size=vocab), device)

        def call(feed: dict[str, Any] = feed) -> None:
            with torch.inference_mode():
                model(**feed)

        out.append(timer(call, batch=int(b), warmup=warmup, iterations=iterations))
    return out
