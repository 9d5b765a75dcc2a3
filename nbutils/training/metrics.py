"""Task metrics: accuracy, agreement with a reference, and the official SQuAD v1.1 EM/F1.

The SQuAD functions follow the official v1.1 evaluation script's definitions (lower-case,
strip punctuation and the articles a/an/the, collapse whitespace; F1 over bag-of-token
overlap; the best score over all gold answers), written out here so the suite needs no
download at evaluation time.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def accuracy(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Percentage of predictions equal to the labels."""
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"accuracy needs two equal, non-empty arrays (got {p.shape} and {y.shape})")
    return float((p == y).mean() * 100.0)


def agreement(predictions: Sequence[int] | np.ndarray, reference: Sequence[int] | np.ndarray) -> float:
    """Percentage of predictions equal to a reference model's predictions (e.g. FP32's)."""
    return accuracy(predictions, reference)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token-overlap F1 between normalised prediction and truth."""
    pred_tokens = normalize_answer(prediction).split()
    true_tokens = normalize_answer(truth).split()
    common = Counter(pred_tokens) & Counter(true_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 (percent) over questions, each the best over that question's gold answers.

    Args:
        predictions: question id -> predicted answer text.
        answers: question id -> the gold answer texts.

    """
    if not answers:
        raise ValueError("squad_scores needs at least one question")
    em = f1 = 0.0
    for qid, golds in answers.items():
        pred = predictions.get(qid, "")
        em += max(exact_match_score(pred, g) for g in golds)
        f1 += max(f1_score(pred, g) for g in golds)
    n = len(answers)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def paired_bootstrap(reference: Sequence[float] | np.ndarray, candidate: Sequence[float] | np.ndarray, *,
                     resamples: int = 2000, confidence: float = 95.0, seed: int = 0) -> dict[str, float | bool]:
    """Delta ``mean(candidate) - mean(reference)`` with a paired bootstrap interval over the same examples.

    Both arrays hold one score per example (100/0 for a correct/incorrect prediction, or the example's F1), in
    the same order. The examples are resampled with replacement ``resamples`` times; the interval is the central
    ``confidence`` % of the resampled deltas. ``distinguishable`` is False when the interval includes 0: on 872
    sentences one sentence is 0.11 point, so small deltas often cannot be told apart from noise.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError(f"paired bootstrap needs two equal, non-empty 1-D score arrays (got {ref.shape}, {cand.shape})")
    diff = cand - ref
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(resamples, diff.size))
    means = diff[idx].mean(axis=1)
    tail = (100.0 - confidence) / 2
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return {"delta": float(diff.mean()), "low": float(lo), "high": float(hi),
            "distinguishable": bool(lo > 0 or hi < 0)}


def sqnr_from_sums(signal: float, noise: float) -> float:
    """SQNR in dB from accumulated ``Σx²`` and ``Σ(x−y)²``: inf without noise, -inf without signal."""
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise)) if signal > 0 else float("-inf")


def sqnr_db(reference: Sequence[float] | np.ndarray, test: Sequence[float] | np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``test`` against ``reference`` in dB: ``10 log10(Σx² / Σ(x−y)²)``."""
    ref = np.asarray(reference, dtype=np.float64)
    return sqnr_from_sums(float(np.sum(ref**2)), float(np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2)))
