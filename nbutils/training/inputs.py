"""Model inputs: their names (one home) and the fixed-shape batches every benchmark feeds.

Inputs are fixed-shape batches of real token ids with a full attention mask (every position
attended, as in TensorRT's BERT demo at a given sequence length), so every engine sees the same
shapes and the same work.
"""

from __future__ import annotations

import numpy as np

from nbutils.core.errors import NbUtilsError

# The inputs a BERT-family model takes, in the order ONNX and OpenVINO files declare them.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def synthetic_batch(batch: int, seq: int, *, vocab_size: int = 30522, seed: int = 0) -> dict[str, np.ndarray]:
    """A ``batch`` × ``seq`` BERT input: [CLS] random tokens [SEP], attention mask of ones, segment 0."""
    if batch <= 0 or seq < 2:
        raise NbUtilsError(f"invalid benchmark shape batch={batch}, seq={seq}", "use batch >= 1 and seq >= 2")
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": np.ones((batch, seq), dtype=np.int64),
            "token_type_ids": np.zeros((batch, seq), dtype=np.int64)}
