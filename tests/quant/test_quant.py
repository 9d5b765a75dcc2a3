import numpy as np
import pytest
import torch

from nbutils import quant
from nbutils.core.errors import NbUtilsError
from nbutils.training.models import load_model


def _tiny():
    return load_model("random:bert-tiny", num_labels=2)


def _batches(n=2, b=4, seq=16):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ids = rng.integers(1000, 30000, size=(b, seq)).astype(np.int64)
        out.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return out


def test_known_tensor_amax_under_each_method():
    """One quantizer fed a known tensor: N(0,1) bulk plus five outliers at 50."""
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    q = TensorQuantizer(QuantizerAttributeConfig(num_bits=8, axis=None, calibrator="histogram"))
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200_000, generator=g), torch.full((5,), 50.0)])
    q.disable_quant()
    q.enable_calib()
    q(x)
    cal = q._calibrator
    bin_w = 50 / 2048
    exact = np.quantile(x.abs().numpy(), [0.999, 0.9999])  # 3.33, 3.93
    assert float(cal._calib_bin_edges[-1]) == pytest.approx(50.0)  # "max" keeps the outliers
    assert float(cal.compute_amax("percentile", percentile=99.9)) == pytest.approx(exact[0], abs=bin_w)
    assert float(cal.compute_amax("percentile", percentile=99.99)) == pytest.approx(exact[1], abs=bin_w)
    # entropy (KL, searched from bin 128 = 3.1) and MSE both clip the outliers near the bulk's edge
    assert 3.1 <= float(cal.compute_amax("entropy", stride=4)) < 5.0
    assert 2.5 < float(cal.compute_amax("mse", stride=8)) < 4.0


def test_default_placement_counts_on_bert_tiny():
    m = quant.insert_quantizers(_tiny(), "trt-bert")
    counts = quant.count_enabled(m)
    # 2 layers x (q,k,v,attn-out,ffn-in,ffn-out) = 12 linears: 12 weight + 12 input quantizers;
    # attention: (q,k,v,softmax) x 2 layers = 8; residual LayerNorm inputs: 2 per layer = 4
    assert counts == {"weight": 12, "input": 12, "attention": 8, "residual": 4}
    names = [n for n, _ in quant.quantizers(m)]
    assert not any("embeddings" in n or n.startswith("classifier") for n in names)
    w = dict(quant.quantizers(m))["bert.encoder.layer.0.attention.self.query.weight_quantizer"]
    assert w.axis == 0


def test_ffn_only_and_per_tensor():
    m = quant.insert_quantizers(_tiny(), "ffn-only")
    names = [n for n, _ in quant.quantizers(m)]
    assert len(names) == 8 and all("intermediate.dense" in n or ".output.dense" in n for n in names)
    assert not any("attention" in n for n in names)
    m2 = quant.insert_quantizers(_tiny(), "per-tensor")
    w = dict(quant.quantizers(m2))["bert.encoder.layer.0.attention.self.query.weight_quantizer"]
    assert w.axis is None


def test_ptq_calibrates_every_enabled_quantizer_and_changes_outputs():
    m = _tiny()
    qm, secs = quant.quantize_ptq(m, _batches(), quant.Recipe("percentile-99.99"))
    summary = quant.quant_summary(qm, enabled_only=True)
    assert (summary["amax"] != "dynamic").all() and secs > 0
    softmax = summary[summary.kind == "softmax_quantizer"]
    assert len(softmax) == 2 and (softmax.amax_max <= 1.0 + 1e-6).all()  # probabilities
    feed = {k: torch.as_tensor(v) for k, v in _batches(1)[0].items()}
    with torch.no_grad():
        a, b = m(**feed).logits, qm(**feed).logits
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.5)
    quant.apply_calibrator(qm, "max")
    s_max = quant.quant_summary(qm, enabled_only=True).set_index("quantizer")["amax_max"]
    s_pct = summary.set_index("quantizer")["amax_max"]
    inputs = [n for n in s_pct.index if n.endswith("input_quantizer")]
    assert (s_max[inputs] >= s_pct[inputs] - 1e-6).all()  # max never clips below a percentile


def test_save_and_load_roundtrip(tmp_path):
    from nbutils.training.models import load_tokenizer

    qm, _ = quant.quantize_ptq(_tiny(), _batches(), quant.Recipe("max"))
    path = quant.save_quantized(qm, load_tokenizer("random:bert-tiny"), tmp_path / "q", {"placement": "trt-bert"})
    again = quant.load_quantized(path)
    feed = {k: torch.as_tensor(v) for k, v in _batches(1)[0].items()}
    with torch.no_grad():
        assert torch.allclose(qm(**feed).logits, again(**feed).logits, atol=1e-5)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(NbUtilsError, match="unknown recipe"):
        quant.parse_recipe("int8-magic")
    with pytest.raises(NbUtilsError, match="unknown calibrator"):
        quant.Recipe("median").validate()
    assert quant.parse_recipe("ptq-percentile-99.99-ffn-only") == quant.Recipe("percentile-99.99", "ffn-only")
    with pytest.raises(NbUtilsError, match="matches no quantizer"):
        quant.insert_quantizers(_tiny(), quant.Placement(only=(r"decoder\.block",)))
    with pytest.raises(NbUtilsError, match="calibration set is empty"):
        quant.quantize_ptq(_tiny(), [], quant.Recipe("max"))


def test_sqnr():
    ref = np.array([1.0, -1.0, 2.0])
    assert quant.sqnr_db(ref, ref * 1.1) == pytest.approx(20.0)


def test_ptq_checkpoint_shares_its_baselines_weight_file(tmp_path):
    """PTQ changes no weight: the saved checkpoint's weight file is the baseline's (one copy on disk), and loads."""
    import json
    import os
    import shutil

    from nbutils.training.models import load_tokenizer, save_checkpoint

    tok = load_tokenizer("random:bert-tiny")
    base = save_checkpoint(_tiny(), tok, tmp_path / "base", {})
    from nbutils.training.models import load_model

    qm, _ = quant.quantize_ptq(load_model(str(base)), _batches(), quant.Recipe("max"))
    path = quant.save_quantized(qm, tok, tmp_path / "q", {"placement": "trt-bert", "baseline": str(base)})
    assert os.path.samefile(path / "model.safetensors", base / "model.safetensors")
    feed = {k: torch.as_tensor(v) for k, v in _batches(1)[0].items()}
    with torch.no_grad():
        assert torch.allclose(qm(**feed).logits, quant.load_quantized(path)(**feed).logits, atol=1e-5)
    # a model whose encoder weights changed (QAT, word embeddings frozen) stores only what changed, and loads back
    with torch.no_grad():
        qm.bert.encoder.layer[0].attention.self.query.weight.add_(0.01)
    other = quant.save_quantized(qm, tok, tmp_path / "qat", {"placement": "trt-bert", "baseline": str(base)})
    assert not os.path.samefile(other / "model.safetensors", base / "model.safetensors")
    meta = json.loads((other / "nbutils.json").read_text())
    # the quantized weights are stored as INT8 codes and scales, everything else in float or left to the baseline
    assert meta["int8_weights"] == 12  # 2 layers x 6 linears of the tiny BERT (Q, K, V, out, FFN in, FFN out)
    from safetensors.torch import load_file

    stored = load_file(str(other / "weights-int8.safetensors"))
    codes = stored["bert.encoder.layer.0.attention.self.query.weight"]
    assert codes.dtype == torch.int8 and int(codes.abs().max()) == 127  # the channel maxima sit at the grid's end
    assert meta["shared_with_baseline"][0] == "bert.embeddings.word_embeddings.weight"
    float_bytes = (other / "model.safetensors").stat().st_size
    assert float_bytes < 0.2 * (base / "model.safetensors").stat().st_size
    loaded = quant.load_quantized(other)
    with torch.no_grad():  # the same model: identical outputs, not merely close ones
        assert torch.equal(qm(**feed).logits, loaded(**feed).logits)
        w = loaded.bert.encoder.layer[0].attention.self.query
        assert torch.equal(w.weight_quantizer(w.weight), qm.bert.encoder.layer[0].attention.self.query.weight_quantizer(
            qm.bert.encoder.layer[0].attention.self.query.weight))
    # its baseline gone, it says so instead of loading random embeddings
    shutil.rmtree(base)
    with pytest.raises(NbUtilsError, match="which is gone"):
        quant.load_quantized(other)


def test_sim_predictor_replays_a_checkpoints_kept_outputs_and_loads_the_model_only_when_needed(tmp_path):
    """Notebooks 40, 42, 45, 70 and 80 compare with (or score) the fake-quantized models notebook 30 ran: their
    outputs are replayed; the model is loaded only when nothing is kept, or the checkpoint changed."""
    import types

    import numpy as np
    import torch

    from nbutils.quant import sim_outputs, sim_predictor
    from nbutils.training.tasks import Encoded

    class Tiny(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            return types.SimpleNamespace(logits=input_ids.float().sum(-1, keepdim=True) * 2)

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "nbutils.json").write_text("{}")
    enc = Encoded([{"input_ids": np.arange(6).reshape(2, 3)}, {"input_ids": np.arange(3).reshape(1, 3)}])
    loads = []

    def load():
        loads.append(1)
        return Tiny()

    live = sim_predictor(tmp_path, ckpt, enc, load)
    first = [live(b) for b in enc.batches]
    assert len(loads) == 1 and sim_outputs(tmp_path, ckpt).is_file()
    replay = sim_predictor(tmp_path, ckpt, enc, load)
    assert all(np.array_equal(a, replay(b)) for a, b in zip(first, enc.batches, strict=True)) and len(loads) == 1
    (ckpt / "nbutils.json").write_text('{"recipe": "calibrated again"}')  # another checkpoint: computed again
    again = sim_predictor(tmp_path, ckpt, enc, load)
    [again(b) for b in enc.batches]
    assert len(loads) == 2
