"""Sensitivity groups, the quantizer switch, FLOP shares (hand-computed), and the errors of notebook 80."""

import numpy as np
import pytest
import torch

from nbutils import quant
from nbutils.core.errors import NbUtilsError
from nbutils.core.vocab import variant_dir
from nbutils.formats import to_onnx
from nbutils.quant import sensitivity
from nbutils.training.models import load_model, save_checkpoint


def _batches(n=2, b=4, seq=16, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(1000, 30000, size=(b, seq)).astype(np.int64)
        out.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return out


@pytest.fixture(scope="module")
def tiny():
    qm, _ = quant.quantize_ptq(load_model("random:bert-tiny"), _batches(), quant.Recipe("max"), progress=False)
    return qm


def _logits(model):
    feed = {k: torch.as_tensor(v) for k, v in _batches(n=1, seed=5)[0].items()}
    with torch.no_grad():
        return model(**feed).logits


def test_groups_cover_every_encoder_quantizer_once(tiny):
    gs = sensitivity.groups(tiny)
    assert [g.name for g in gs[:7]] == [f"L0.{r}" for r in sensitivity.ROLES] and len(gs) == 14
    sizes = {g.role: len(g.quantizers) for g in gs if g.block == 1}
    assert sizes == {"qkv-proj": 6, "attn-qkv": 3, "softmax": 1, "attn-out": 2, "ffn-in": 2, "ffn-out": 2, "residual": 2}
    grouped = [n for g in gs for n in g.quantizers]
    assert len(grouped) == len(set(grouped))
    encoder = [n for n in sensitivity.enabled_quantizers(tiny) if ".layer." in n]
    assert sorted(grouped) == sorted(encoder)
    softmax = next(g for g in gs if g.name == "L1.softmax")
    assert softmax.quantizers == ("bert.encoder.layer.1.attention.self.softmax_quantizer",)
    ffn_out = next(g for g in gs if g.name == "L0.ffn-out")
    assert all(".layer.0.output.dense." in n for n in ffn_out.quantizers)  # not the attention output projection


def test_switches_change_exactly_the_group_and_restore(tiny):
    before = set(sensitivity.enabled_quantizers(tiny))
    g = sensitivity.find_groups(sensitivity.groups(tiny), ["L1.attn-out"])[0]
    full = _logits(tiny)
    with sensitivity.only_quantized(tiny, g):
        assert set(sensitivity.enabled_quantizers(tiny)) == set(g.quantizers)
        alone = _logits(tiny)
    with sensitivity.only_float(tiny, g):
        assert set(sensitivity.enabled_quantizers(tiny)) == before - set(g.quantizers)
        floated = _logits(tiny)
    assert set(sensitivity.enabled_quantizers(tiny)) == before
    with sensitivity.enabled_only(tiny, set()):
        fp32 = _logits(tiny)  # every quantizer off: the float model
    assert not torch.equal(full, floated) and not torch.equal(alone, fp32) and not torch.equal(full, fp32)
    plain = load_model("random:bert-tiny")
    assert torch.allclose(fp32, _logits(plain), atol=1e-5)
    assert torch.equal(_logits(tiny), full)  # restored


def test_flop_share_hand_computed(tiny, tmp_path):
    seq = 16
    sites = sensitivity.matmul_sites(tiny, seq)
    # bert-tiny: hidden 128, FFN 512, 2 heads of 64, 2 layers; pooler and classifier see one token
    linear = 4 * 2 * seq * 128 * 128 + 2 * (2 * seq * 128 * 512)
    attention = 2 * (2 * 2 * seq * seq * 64)
    head = 2 * 128 * 128 + 2 * 128 * 2
    assert sum(s.flops for s in sites) == 2 * (linear + attention) + head
    on = sensitivity.enabled_quantizers(tiny)
    assert sensitivity.int8_flop_share(sites, on) == pytest.approx(2 * (linear + attention) / (2 * (linear + attention) + head))
    ffn_in = next(g for g in sensitivity.groups(tiny) if g.name == "L0.ffn-in")
    without = set(on) - set(ffn_in.quantizers)
    expected = (2 * (linear + attention) - 2 * seq * 128 * 512) / (2 * (linear + attention) + head)
    assert sensitivity.int8_flop_share(sites, without) == pytest.approx(expected)
    # the exported Q/DQ graph counts the same FLOPs and the same INT8 share
    with sensitivity.keep_float(tiny, [ffn_in]):
        v = to_onnx.export_torch(tiny, variant_dir(tmp_path, "mixed"), recipe="ptq-max-mixed-k1",
                                precision="int8", source="x", task="classification")
    counted = sensitivity.onnx_int8_flop_share(v.path, seq)
    assert counted["gemm_flops"] == 2 * (linear + attention) + head
    assert counted["int8_share"] == pytest.approx(expected)


def test_clear_errors(tiny, tmp_path):
    gs = sensitivity.groups(tiny)
    with pytest.raises(NbUtilsError, match="no group 'L9.softmax'") as err:
        sensitivity.find_groups(gs, ["L9.softmax"])
    assert "blocks 0..1" in err.value.fix
    with pytest.raises(NbUtilsError, match="there are 14 groups"):
        sensitivity.check_k(15, len(gs))
    sensitivity.check_k(14, len(gs))
    with pytest.raises(NbUtilsError, match="not enabled quantizers"):
        with sensitivity.enabled_only(tiny, {"bert.encoder.layer.0.nothing_quantizer"}):
            pass
    with pytest.raises(NbUtilsError, match="unknown ranking"):
        sensitivity.rank(None, by="random")
    # the PTQ checkpoint: missing, recorded for another baseline, or holding another baseline's weights
    from transformers import AutoTokenizer

    from nbutils.training.models import packaged_model_dir

    tok = AutoTokenizer.from_pretrained(str(packaged_model_dir()))
    base_a = save_checkpoint(load_model("random:bert-tiny"), tok, tmp_path / "base-a", {})
    other = load_model("random:bert-tiny")
    with torch.no_grad():
        other.classifier.weight.add_(0.01)  # another fine-tune: other head weights
    base_b = save_checkpoint(other, tok, tmp_path / "base-b", {})
    with pytest.raises(NbUtilsError, match="no PTQ checkpoint"):
        sensitivity.check_ptq_checkpoint(tmp_path / "missing", base_a)
    qm, _ = quant.quantize_ptq(load_model(str(base_a)), _batches(), quant.Recipe("max"), progress=False)
    ckpt = quant.save_quantized(qm, tok, tmp_path / "ptq", {"placement": "trt-bert", "recipe": "ptq-max",
                                                           "baseline": str(base_a)})
    assert sensitivity.check_ptq_checkpoint(ckpt, base_a)["recipe"] == "ptq-max"
    with pytest.raises(NbUtilsError, match="calibrated on another baseline"):
        sensitivity.check_ptq_checkpoint(ckpt, base_b)
    anon = quant.save_quantized(qm, tok, tmp_path / "ptq-anon", {"placement": "trt-bert", "recipe": "ptq-max"})
    with pytest.raises(NbUtilsError, match="other weights"):
        sensitivity.check_ptq_checkpoint(anon, base_b)


def test_auto_quantize_peer_lists_its_int8_and_float_layers():
    batches = [b | {"labels": np.array([0, 1, 0, 1])} for b in _batches(n=4)]
    qm, info = sensitivity.auto_quantize(load_model("random:bert-tiny"), batches, effective_bits=9.0, score_steps=4)
    encoder_linears = {f"bert.encoder.layer.{i}.{n}" for i in range(2) for n in (
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense")}
    assert set(info["int8_layers"]) | set(info["float_layers"]) == encoder_linears
    assert not set(info["int8_layers"]) & set(info["float_layers"]) and info["float_layers"]  # 9 bits: some float
    with pytest.raises(NbUtilsError, match="outside 8..16"):
        sensitivity.auto_quantize(load_model("random:bert-tiny"), batches, effective_bits=4.8, score_steps=4)


def test_sensitivity_table_reusing_the_blocks_before_each_group_gives_the_same_numbers(tiny):
    """Each group's passes start at its own block (the blocks before compute what the float, or the fully
    quantized, model computes): the table equals the one computed from the first block, and the blocks are
    restored afterwards."""
    from nbutils.training.metrics import sqnr_db

    feed = [{k: torch.as_tensor(v) for k, v in b.items()} for b in _batches(n=2, seed=7)]
    with sensitivity.enabled_only(tiny, set()), torch.no_grad():
        fp32 = torch.cat([tiny(**f).logits for f in feed]).numpy()
    calls = []

    def score():
        with torch.no_grad():
            out = torch.cat([tiny(**f).logits for f in feed]).numpy()
        calls.append(1)
        agree = float((out.argmax(-1) == fp32.argmax(-1)).mean() * 100)
        return sensitivity.Score(agree, sqnr_db(fp32, out), None)

    gs = sensitivity.groups(tiny)
    blocks = sensitivity.encoder_blocks(tiny)
    assert len(blocks) == 2
    calls_per_layer = []
    counts = [0, 0]
    # counted inside each block (a block's own hooks fire even when its output is replayed)
    hooks = [b.attention.register_forward_hook(lambda m, a, o, i=i: counts.__setitem__(i, counts[i] + 1))
             for i, b in enumerate(blocks)]
    try:
        reused = sensitivity.sensitivity_table(tiny, gs, score, progress=False)
        calls_per_layer.append(list(counts))
        counts[:] = [0, 0]
        plain = sensitivity.sensitivity_table(tiny, gs, score, progress=False, reuse_prefix=False)
        calls_per_layer.append(list(counts))
    finally:
        for h in hooks:
            h.remove()
    cols = ["metric_quant_alone", "sqnr_quant_alone", "metric_float_alone", "sqnr_float_alone"]
    assert np.array_equal(reused[cols].to_numpy(), plain[cols].to_numpy())
    assert not any("forward" in b.__dict__ for b in blocks)  # each block's own forward is back
    # without reuse every pass runs both blocks; with it, block 0 runs only for block 0's groups and the two
    # recording passes (2 batches per pass)
    assert calls_per_layer[1] == [2 * 2 * len(gs)] * 2
    assert calls_per_layer[0][1] == calls_per_layer[1][1] + 2 * 2
    assert calls_per_layer[0][0] == 2 * 2 * 7 + 2 * 2
