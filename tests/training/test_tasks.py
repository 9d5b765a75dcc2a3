import numpy as np
import pytest

from nbutils.training.data import load_task_data, squad_json
from nbutils.training.models import load_tokenizer
from nbutils.training.tasks import encode, evaluate


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("default")


def _squad(tmp_path):
    ctx = "The Eiffel Tower is in Paris. It was finished in 1889 for the World Fair."
    arts = [{"title": f"T{i}", "paragraphs": [{"context": ctx, "qas": [
        {"id": f"a{i}", "question": "When was it finished?", "answers": [{"text": "1889", "answer_start": ctx.index("1889")}]},
        {"id": f"b{i}", "question": "Where is the tower?", "answers": [{"text": "Paris", "answer_start": ctx.index("Paris")}]},
    ]}]} for i in range(2)]
    f = tmp_path / "s.json"
    f.write_text(squad_json(arts))
    return load_task_data(str(f))


def test_qa_training_positions_point_at_the_answer(tmp_path, tok):
    d = _squad(tmp_path)
    enc = encode(d, "train", tok, max_length=48, batch_size=8)
    b = enc.batches[0]
    for i in range(len(b["input_ids"])):
        span = tok.decode(b["input_ids"][i][b["start_positions"][i]: b["end_positions"][i] + 1])
        assert span in ("1889", "paris")


def test_qa_evaluate_reads_answers_back_through_offsets(tmp_path, tok):
    d = _squad(tmp_path)
    gold = encode(d, "train", tok, max_length=48, batch_size=8)  # same questions, with positions
    val = encode(d, "validation", tok, max_length=48, batch_size=8)
    starts = np.concatenate([b["start_positions"] for b in gold.batches])
    ends = np.concatenate([b["end_positions"] for b in gold.batches])

    def oracle(batch):
        n, seq = batch["input_ids"].shape
        s, e = np.full((n, seq), -10.0), np.full((n, seq), -10.0)
        s[np.arange(n), starts[:n]] = 10.0
        e[np.arange(n), ends[:n]] = 10.0
        return s, e

    res = evaluate(oracle, d, val)
    assert res.metrics == {"exact_match": 100.0, "f1": 100.0}
    assert res.predictions == ["1889", "Paris"]


def test_classification_batches_and_padding(tok):
    d = load_task_data("embedded", train_samples=10)
    enc = encode(d, "train", tok, max_length=16, batch_size=4, pad_to_max=True)
    assert [len(b["labels"]) for b in enc.batches] == [4, 4, 2]
    assert all(b["input_ids"].shape[1] == 16 for b in enc.batches)
    with pytest.raises(ValueError):
        encode(d, "train", tok, max_length=16, batch_size=0)


def test_memoize_runs_each_batch_once():
    import numpy as np

    from nbutils.training.tasks import memoize

    calls = []

    def predict(batch):
        calls.append(1)
        return batch["input_ids"] * 2

    p = memoize(predict)
    a = {"input_ids": np.arange(4)}
    assert (p(a) == np.arange(4) * 2).all() and (p({"input_ids": a["input_ids"]}) == np.arange(4) * 2).all()
    assert len(calls) == 1  # the same array, in another dict: cached
    assert (p({"input_ids": np.arange(4) + 1}) == (np.arange(4) + 1) * 2).all() and len(calls) == 2


def test_recorded_outputs_are_computed_once_per_run_folder(tmp_path):
    import numpy as np

    from nbutils.training.tasks import Encoded, recorded

    enc = Encoded([{"input_ids": np.arange(6).reshape(2, 3)}, {"input_ids": np.arange(3).reshape(1, 3)}])
    calls = []

    def make():
        calls.append("built")
        return lambda b: b["input_ids"].sum(-1, keepdims=True) * 1.0

    path = tmp_path / "out.npz"
    p = recorded(make, path, enc)
    first = [p(b) for b in enc.batches]
    assert path.is_file() and calls == ["built"]
    again = recorded(make, path, enc)
    assert all(np.array_equal(a, b) for a, b in zip(first, [again(b) for b in enc.batches], strict=True))
    assert calls == ["built"]  # replayed: the model was never built again
    other = Encoded([{"input_ids": np.arange(6).reshape(2, 3) + 1}, {"input_ids": np.arange(3).reshape(1, 3)}])
    p2 = recorded(make, path, other)
    [p2(b) for b in other.batches]
    assert calls == ["built", "built"]  # another split's outputs are not replayed


def test_recorded_computes_each_batch_once_before_it_is_saved(tmp_path):
    import numpy as np

    from nbutils.training.tasks import Encoded, recorded

    enc = Encoded([{"input_ids": np.ones((2, 3), dtype=np.int64)}, {"input_ids": np.zeros((1, 3), dtype=np.int64)}])
    calls = []

    def model(b):
        calls.append(1)
        return b["input_ids"] * 1.0

    p = recorded(lambda: model, tmp_path / "o.npz", enc)
    for _ in range(2):  # e.g. parity, then scoring
        [p(b) for b in enc.batches]
    assert len(calls) == 2


def test_encoded_head_keeps_whole_batches_up_to_the_count():
    import numpy as np

    from nbutils.training.tasks import Encoded

    enc = Encoded([{"input_ids": np.full((64, 3), i)} for i in range(5)])
    assert len(enc.head(256)) == 256 and len(enc.head(100)) == 128
    assert enc.head(10_000) is enc
    two = enc.head(100)  # batches spread over the split (first and last), with the positions they hold
    assert [int(b["input_ids"][0, 0]) for b in two.batches] == [0, 4]
    assert list(two.positions[:2]) == [0, 1] and list(two.positions[-2:]) == [318, 319]


def test_evaluation_batches_go_in_length_order_within_windows(tmp_path):
    """Unshuffled classification batches hold sentences of similar length (less padding); every window of
    LENGTH_WINDOW examples keeps the same sentences, and the scores do not depend on the order."""
    import numpy as np

    from nbutils.training.data import load_task_data, write_classification_folder
    from nbutils.training.models import load_tokenizer
    from nbutils.training.tasks import LENGTH_WINDOW, encode, length_order

    assert list(length_order([[1] * 3, [1], [1] * 2, [1]], window=2)) == [1, 0, 3, 2]  # stable within each window
    rng = np.random.default_rng(0)
    rows = [(" ".join(["good"] * int(n)), i % 2) for i, n in enumerate(rng.integers(1, 30, size=600))]
    data = load_task_data(str(write_classification_folder(tmp_path / "d", {"train": rows, "validation": rows})))
    tok = load_tokenizer("random:bert-tiny")
    enc = encode(data, "validation", tok, max_length=64, batch_size=32)
    fixed = encode(data, "validation", tok, max_length=64, batch_size=32, pad_to_max=True)  # file order
    lengths = [len(tok(t)["input_ids"]) for t, _ in rows]
    file_order = sum(len(lengths[i:i + 32]) * max(lengths[i:i + 32]) for i in range(0, len(rows), 32))
    padded = sum(b["input_ids"].size for b in enc.batches)
    assert sum(lengths) <= padded < 0.75 * file_order  # far less padding than batches in file order
    labels = np.concatenate([b["labels"] for b in enc.batches])
    first = np.concatenate([b["labels"] for b in enc.batches])[:LENGTH_WINDOW]
    assert sorted(first) == sorted(np.asarray([r[1] for r in rows[:LENGTH_WINDOW]]))
    assert sorted(labels) == sorted(np.concatenate([b["labels"] for b in fixed.batches]))


def test_training_batches_are_a_random_permutation_per_seed(tmp_path):
    """Shuffled (training) batches: every example once, in the order of the seed's random permutation (not
    grouped by length: a model fine-tuned on length-grouped batches quantized worse on SST-2)."""
    import numpy as np

    from nbutils.training.data import load_task_data, write_classification_folder
    from nbutils.training.models import load_tokenizer
    from nbutils.training.tasks import encode

    rng = np.random.default_rng(1)
    rows = [(" ".join([f"w{i}"] + ["good"] * int(n)), i % 2) for i, n in enumerate(rng.integers(1, 30, size=600))]
    data = load_task_data(str(write_classification_folder(tmp_path / "d", {"train": rows, "validation": rows})))
    tok = load_tokenizer("random:bert-tiny")
    a = encode(data, "train", tok, max_length=64, batch_size=32, shuffle=True, seed=0)
    b = encode(data, "train", tok, max_length=64, batch_size=32, shuffle=True, seed=1)
    ids = lambda e: sorted(tuple(r[r > 0]) for bt in e.batches for r in bt["input_ids"])  # noqa: E731
    assert ids(a) == ids(b) and len(ids(a)) == 600  # the same examples, each once
    first = [tuple(bt["input_ids"][0]) for bt in a.batches]
    assert first != [tuple(bt["input_ids"][0]) for bt in b.batches]
    # the order is the seed's permutation: the labels come in that order (i % 2 of each row's index)
    want = np.asarray([r[1] for r in rows])[np.random.default_rng(0).permutation(600)]
    assert list(np.concatenate([bt["labels"] for bt in a.batches])) == list(want)
    lengths = [int(m.sum()) for bt in a.batches for m in bt["attention_mask"]]
    assert not all(x <= y for x, y in zip(lengths, lengths[1:], strict=False))  # not sorted by length


def test_a_folder_with_only_a_tokenizer_loads_as_a_tokenizer(tmp_path):
    """Scoring an ONNX file needs its tokenizer, not the PyTorch weights: a tokenizer-only folder is enough."""
    from nbutils.training.models import load_tokenizer

    load_tokenizer("random:bert-tiny").save_pretrained(tmp_path / "tok")
    assert load_tokenizer(str(tmp_path / "tok"))("a fine film")["input_ids"][0] == 101


def test_baseline_reference_replays_the_fp32_outputs_ensure_baseline_kept(tmp_path):
    """Notebooks 40 and 42 check each file against the FP32 model through Baseline.reference(): on the validation
    split it reads the recorded pass back; another batch (or a baseline with no record) runs the model."""
    import types

    import numpy as np
    import torch

    from nbutils.training.baseline import Baseline, BaselineConfig
    from nbutils.training.tasks import Encoded, recorded

    calls = []

    class Tiny(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            calls.append(1)
            return types.SimpleNamespace(logits=input_ids.float()[:, :2])

    enc = Encoded([{"input_ids": np.arange(6).reshape(2, 3)}])
    kept = tmp_path / "fp32.npz"
    recorded(lambda: (lambda b: b["input_ids"][:, :2] * 10.0), kept, enc)(enc.batches[0])  # the pass made before
    base = Baseline(BaselineConfig(), tmp_path, None, None, Tiny(), enc, None, outputs=kept)
    assert np.array_equal(base.reference()(enc.batches[0]), np.arange(6).reshape(2, 3)[:, :2] * 10.0) and not calls
    other = {"input_ids": np.ones((1, 3), dtype=np.int64)}
    assert np.array_equal(base.reference()(other), [[1.0, 1.0]]) and len(calls) == 1
    unrecorded = Baseline(BaselineConfig(), tmp_path, None, None, Tiny(), enc, None)
    ref = unrecorded.reference()
    ref(enc.batches[0]), ref(enc.batches[0])
    assert len(calls) == 2  # computed, once per batch
