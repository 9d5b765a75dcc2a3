import numpy as np
import pytest

from nbutils import quant
from nbutils.core.errors import NbUtilsError
from nbutils.core.paths import atomic_path
from nbutils.core.vocab import variant_dir
from nbutils.engines import ort_session
from nbutils.formats import to_onnx
from nbutils.training.models import load_model, torch_predictor


def _batches(n=2, b=4, seq=16, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(1000, 30000, size=(b, seq)).astype(np.int64)
        out.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    m = load_model("random:bert-tiny", attn_implementation="eager")
    fp32 = to_onnx.export_torch(m, variant_dir(root, "fp32"), recipe="fp32", precision="fp32",
                               source="random:bert-tiny", task="classification")
    return root, m, fp32


def test_fp32_export_checks_and_parity(tiny):
    _, m, fp32 = tiny
    info = to_onnx.check(fp32.path)
    assert info["opset"] >= 17 and info["QuantizeLinear"] == 0
    assert (fp32.path.parent / "variant.json").is_file() and fp32.meta["sha256"]
    s = ort_session.make_session(fp32.path, "cpu")
    par = to_onnx.parity(torch_predictor(m), ort_session.ort_predictor(s), _batches(), "fp32")
    assert par["parity_ok"] and par["max_abs_diff"] < 1e-4 and par["cosine"] > 0.99999


def test_fused_graph_and_fp16(tiny):
    root, m, fp32 = tiny
    fused_v, fused = to_onnx.optimize_transformer(fp32, variant_dir(root, "fused"), num_heads=2, hidden_size=128,
                                                 recipe="fp32-fused")
    assert fused.get("Attention") == 2 and fused.get("SkipLayerNormalization") == 4
    f16, _ = to_onnx.optimize_transformer(fp32, variant_dir(root, "fp16"), num_heads=2, hidden_size=128,
                                         recipe="fp16", fp16=True)
    s = ort_session.make_session(f16.path, "cpu")
    assert s.session.get_inputs()[0].type == "tensor(int64)"  # I/O types kept
    par = to_onnx.parity(torch_predictor(m), ort_session.ort_predictor(s), _batches(), "fp16")
    assert par["top1_agreement"] >= to_onnx.PARITY["fp16"]["agreement"]
    dyn = to_onnx.ort_dynamic(fused_v, variant_dir(root, "dyn"))  # fused graph needs DefaultTensorType
    opt = root / "dyn-opt.onnx"
    ort_session.make_session(dyn.path, "cpu", optimized_model_path=opt)
    kernels = ort_session.integer_kernel_counts(opt)
    assert kernels.get("DynamicQuantizeMatMul", 0) + kernels.get("QAttention", 0) > 0


def test_modelopt_qdq_export_quantizes_every_encoder_matmul(tiny):
    root, m, _ = tiny
    qm, _ = quant.quantize_ptq(load_model("random:bert-tiny"), _batches(), quant.Recipe("max"))
    v = to_onnx.export_torch(qm, variant_dir(root, "ptq"), recipe="ptq-max", precision="int8",
                            source="x", task="classification")
    rep = to_onnx.qdq_report(v.path)
    # 2 layers x (q, k, v, out, ffn1, ffn2 linears + Q·Kᵀ + softmax·V) = 16 MatMuls, all with INT8 on both inputs;
    # the pooler and classifier Gemms stay float
    # the 12 weights are stored as INT8 tensors read by their DequantizeLinear: 36 DQ, 24 Q (activations only),
    # and one more DQ after the word-embedding Gather (weight-only INT8 table)
    assert rep["matmuls_int8_both_inputs"] == 16 and rep["DequantizeLinear"] == 37 and rep["QuantizeLinear"] == 24
    assert v.meta["int8_weights"] == 12
    assert v.meta["int8_embeddings"] == ["bert.embeddings.word_embeddings.weight"]
    s = ort_session.make_session(v.path, "cpu", graph_optimization="disable")
    par = to_onnx.parity(torch_predictor(qm), ort_session.ort_predictor(s), _batches(4), "int8")
    assert par["cosine"] > 0.99 and par["parity_ok"]


def test_int8_weights_are_int8_and_change_no_output(tiny, tmp_path):
    """Stored INT8 weights compute exactly what the FP32 weight behind Q/DQ computed, in a smaller file."""
    import shutil

    import onnx

    qm, _ = quant.quantize_ptq(load_model("random:bert-tiny"), _batches(), quant.Recipe("max"))
    kw = {"recipe": "ptq-max", "precision": "int8", "source": "x", "task": "classification"}
    fp = to_onnx.export_torch(qm, tmp_path / "fp", int8_weights=False, **kw)
    i8 = tmp_path / "i8.onnx"
    shutil.copy(fp.path, i8)
    assert to_onnx.store_int8_weights(i8) == 12
    weights = [t for t in onnx.load(str(i8)).graph.initializer if t.name.endswith("_int8_weight")]
    assert len(weights) == 12 and all(t.data_type == onnx.TensorProto.INT8 for t in weights)
    # 12 encoder matrices of 128x128 / 128x512 go from 4 bytes to 1 per value
    saved = sum(np.prod(t.dims) for t in weights) * 3 / 1e6
    assert fp.size_mb - i8.stat().st_size / 1e6 == pytest.approx(saved, rel=0.01)
    for provider_opt in ("disable", "all"):
        a = ort_session.ort_predictor(ort_session.make_session(fp.path, "cpu", graph_optimization=provider_opt))
        b = ort_session.ort_predictor(ort_session.make_session(i8, "cpu", graph_optimization=provider_opt))
        for batch in _batches(2):
            assert np.array_equal(np.asarray(a(batch)), np.asarray(b(batch))), provider_opt


def test_int8_embedding_table_is_small_and_close(tmp_path):
    """The word-embedding table becomes INT8 codes + one scale per feature; outputs move by quantization noise."""
    import onnx

    qm, _ = quant.quantize_ptq(load_model("random:bert-tiny"), _batches(), quant.Recipe("max"))
    kw = {"recipe": "ptq-max", "precision": "int8", "source": "x", "task": "classification"}
    fp = to_onnx.export_torch(qm, tmp_path / "fp", int8_weights=False, **kw)
    i8 = to_onnx.export_torch(qm, tmp_path / "i8", **kw)
    graph = onnx.load(str(i8.path)).graph
    table = next(t for t in graph.initializer if t.name == "bert.embeddings.word_embeddings.weight_int8")
    assert table.data_type == onnx.TensorProto.INT8 and list(table.dims) == [30522, 128]
    gather = next(n for n in graph.node if table.name in n.input)
    dq = next(n for n in graph.node if gather.output[0] in n.input)
    assert gather.op_type == "Gather" and dq.op_type == "DequantizeLinear"
    assert next(a.i for a in dq.attribute if a.name == "axis") == -1
    # the whole file: 3 of every 4 bytes of the encoder matrices and of the table are gone
    assert i8.size_mb / fp.size_mb < 0.3
    a = ort_session.ort_predictor(ort_session.make_session(fp.path, "cpu"))
    b = ort_session.ort_predictor(ort_session.make_session(i8.path, "cpu"))
    for batch in _batches(2):
        x, y = np.asarray(a(batch)).ravel(), np.asarray(b(batch)).ravel()
        assert np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y) > 0.99
    # a float model is exported as it is
    fp32 = to_onnx.export_torch(load_model("random:bert-tiny"), tmp_path / "f32", recipe="fp32", precision="fp32",
                                source="x", task="classification")
    assert fp32.meta["int8_weights"] == 0 and fp32.meta["int8_embeddings"] == []


def test_corrupt_truncated_and_unknown_provider(tiny, tmp_path):
    _, _, fp32 = tiny
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(fp32.path.read_bytes()[:5000])
    with pytest.raises(NbUtilsError, match="not a valid ONNX model"):
        ort_session.make_session(bad, "cpu")
    with pytest.raises(NbUtilsError, match="does not exist"):
        ort_session.make_session(tmp_path / "none.onnx", "cpu")
    with pytest.raises(NbUtilsError, match="unknown execution provider 'tpu'"):
        ort_session.make_session(fp32.path, "tpu")


def test_missing_inputs_and_unavailable_provider(tiny):
    _, _, fp32 = tiny
    s = ort_session.make_session(fp32.path, "cpu")
    batch = _batches(1)[0]
    del batch["token_type_ids"]
    with pytest.raises(NbUtilsError, match="needs input.*token_type_ids"):
        ort_session.ort_predictor(s)(batch)
    if ort_session.provider_unavailable_reason("tensorrt"):
        fb = ort_session.make_session(fp32.path, "tensorrt")
        assert fb.provider == "cpu" and fb.requested == "tensorrt" and "TensorRT" in fb.fallback_reason
        assert fb.provenance()["fallback"] and fb.provenance()["provider"] == "cpu"
        with pytest.raises(NbUtilsError, match="unavailable"):
            ort_session.make_session(fp32.path, "tensorrt", fallback=False)


def test_export_twice_and_interrupted_export_leave_no_partial_files(tiny):
    root, m, fp32 = tiny
    again = to_onnx.export_torch(m, fp32.path.parent, recipe="fp32", precision="fp32", source="x", task="classification")
    assert again.meta["sha256"] == fp32.meta["sha256"]
    with pytest.raises(RuntimeError), atomic_path(fp32.path.parent, is_dir=True) as tmp:
        (tmp / "model.onnx").write_bytes(b"half")
        raise RuntimeError("interrupted")
    to_onnx.load_variant(fp32.path.parent)  # still the complete, valid file
    assert not [p for p in fp32.path.parent.parent.iterdir() if p.name.startswith(".")]


def test_ort_static_entropy_is_not_minmax(tiny):
    root, _, fp32 = tiny
    calib = to_onnx.calibration_dataset(_batches(4, 8, 32), ["input_ids", "attention_mask", "token_type_ids"])
    mm = to_onnx.ort_static(fp32, variant_dir(root, "s-minmax"), calib, calibrator="minmax")
    ent = to_onnx.ort_static(fp32, variant_dir(root, "s-entropy"), calib, calibrator="entropy")
    assert mm.meta["sha256"] != ent.meta["sha256"]
    with pytest.raises(NbUtilsError, match="unknown ONNX Runtime calibrator"):
        to_onnx.ort_static(fp32, variant_dir(root, "s-x"), calib, calibrator="kl")


def test_qdq_export_puts_weights_on_the_grid_and_restores_them(tiny, tmp_path):
    import onnx
    import torch
    from onnx import numpy_helper

    qm, _ = quant.quantize_ptq(load_model("random:bert-tiny"), _batches(), quant.Recipe("max"))
    lin = qm.bert.encoder.layer[0].intermediate.dense
    before = lin.weight.detach().clone()
    kw = {"recipe": "ptq-max", "precision": "int8", "source": "x", "task": "classification"}
    v = to_onnx.export_torch(qm, tmp_path / "ptq", int8_weights=False, **kw)  # FP32 weights behind Q/DQ
    assert torch.equal(lin.weight, before)  # the PyTorch model is left as it was
    with torch.no_grad():
        fq = lin.weight_quantizer(lin.weight).numpy()
    m = onnx.load(str(v.path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    produced = {o: n for n in m.graph.node for o in n.output}
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear"
              and "layer.0/intermediate/dense/weight_quantizer" in n.name)
    q = produced[dq.input[0]]
    def value(name):
        return inits[name] if name in inits else numpy_helper.to_array(produced[name].attribute[0].t)

    w, scale = value(q.input[0]), value(dq.input[1]).reshape(-1, 1)
    codes = w / scale
    assert np.abs(codes - np.round(codes)).max() < 1e-3  # on the grid: no value near a rounding tie
    assert np.array_equal(np.round(codes), np.round(fq / scale))  # the same INT8 codes as PyTorch's fake quantization
    # the default export stores exactly those codes as the INT8 tensor its DequantizeLinear reads
    m8 = onnx.load(str(to_onnx.export_torch(qm, tmp_path / "ptq8", **kw).path))
    dq8 = next(n for n in m8.graph.node if n.op_type == "DequantizeLinear"
               and "layer.0/intermediate/dense/weight_quantizer" in n.name)
    stored = next(numpy_helper.to_array(i) for i in m8.graph.initializer if i.name == dq8.input[0])
    assert stored.dtype == np.int8 and np.array_equal(stored.astype(np.float32), np.round(codes))


def test_identical_exports_are_stored_once_and_a_released_file_says_so(tmp_path):
    """A second variant whose file has the same bytes as another's is a hard link to it (one copy on disk); a
    variant released after its measurement keeps its sidecar, and loading it names why the file is gone."""
    import os

    from nbutils.formats.files import release

    m = load_model("random:bert-tiny", attn_implementation="eager")
    a = to_onnx.export_torch(m, variant_dir(tmp_path, "fp32"), recipe="fp32", precision="fp32", source="x",
                             task="classification")
    b = to_onnx.export_torch(m, variant_dir(tmp_path, "copy"), recipe="copy", precision="fp32", source="x",
                             task="classification")
    assert os.path.samefile(a.path, b.path) and b.meta["same_bytes_as"] == "fp32" and "same_bytes_as" not in a.meta
    assert not to_onnx.verify_variant(a.path.parent) and not to_onnx.verify_variant(b.path.parent)
    freed = release(b, "not read later")
    assert freed > 0 and a.path.is_file() and not b.path.is_file()  # the other name keeps the bytes
    with pytest.raises(NbUtilsError, match="was not kept after it was measured .not read later."):
        to_onnx.load_variant(b.path.parent)
