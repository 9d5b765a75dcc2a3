"""The graph inspector (issue 10): layout, diff, SQNR and pairing on small hand-built graphs; errors; the browser."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nbutils.core.errors import NbUtilsError
from nbutils.graph import inspector, layout, overlays, view
from nbutils.graph.model import load_graph
from tests.browser import artefacts, browser


def _save(path, nodes, inits, inputs=("x",), outputs=("y",), shape=(2, 4)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, list(shape)) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(shape)) for o in outputs],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f" else np.asarray(v).dtype),
                                 k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


W = np.arange(16, dtype=np.float32).reshape(4, 4) / 10


def _fp32(tmp_path):
    """x -> MatMul(W) -> Add(x) [residual] -> LayerNorm -> y, named like a BERT layer."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"], name="/bert/encoder/layer.0/dense/MatMul"),
             helper.make_node("Add", ["mm", "x"], ["res"], name="/bert/encoder/layer.0/output/Add"),
             helper.make_node("LayerNormalization", ["res", "g", "b"], ["y"], name="/bert/encoder/layer.0/output/LayerNorm",
                              axis=-1)]
    return _save(tmp_path / "fp32.onnx", nodes, {"W": W, "g": np.ones(4), "b": np.zeros(4)})


def _qdq(x_in, name, scale, zp_dtype=np.int8, prefix=""):
    """Q and DQ nodes quantizing ``x_in`` (ModelOpt-style names with a prefix, ORT-style suffix names otherwise)."""
    q_out, dq_out = (f"{prefix}/QuantizeLinear_output_0", f"{prefix}/DequantizeLinear_output_0") if prefix else \
        (f"{x_in}_{name}_QuantizeLinear_Output", f"{x_in}_{name}_DequantizeLinear_Output")
    nodes = [helper.make_node("QuantizeLinear", [x_in, f"{name}_s", f"{name}_z"], [q_out],
                              name=f"{prefix}/QuantizeLinear" if prefix else f"{x_in}_{name}_QuantizeLinear"),
             helper.make_node("DequantizeLinear", [q_out, f"{name}_s", f"{name}_z"], [dq_out],
                              name=f"{prefix}/DequantizeLinear" if prefix else f"{x_in}_{name}_DequantizeLinear")]
    return nodes, {f"{name}_s": np.float32(scale), f"{name}_z": np.zeros((), zp_dtype)}, dq_out


def _int8(tmp_path, *, residual_qdq=True, style="modelopt"):
    """The same graph with Q/DQ on the MatMul input and weight, and (optionally) on the residual Add's inputs."""
    p = "/bert/encoder/layer.0/dense/input_quantizer" if style == "modelopt" else ""
    nodes, inits = [], {"W": W, "g": np.ones(4), "b": np.zeros(4)}
    n1, i1, xq = _qdq("x", "xq", 0.05, prefix=p)
    n2, i2, wq = _qdq("W", "wq", 0.02, prefix="/bert/encoder/layer.0/dense/weight_quantizer" if p else "")
    nodes += n1 + n2
    inits |= i1 | i2
    nodes.append(helper.make_node("MatMul", [xq, wq], ["mm"], name="/bert/encoder/layer.0/dense/MatMul"))
    add_in = ["mm", "x"]
    if residual_qdq:
        n3, i3, mq = _qdq("mm", "mq", 0.1, prefix="/bert/encoder/layer.0/output/mm_quantizer" if p else "")
        n4, i4, rq = _qdq("x", "rq", 0.05, prefix="/bert/encoder/layer.0/output/res_quantizer" if p else "")
        nodes += n3 + n4
        inits |= i3 | i4
        add_in = [mq, rq]
    nodes += [helper.make_node("Add", add_in, ["res"], name="/bert/encoder/layer.0/output/Add"),
              helper.make_node("LayerNormalization", ["res", "g", "b"], ["y"], name="/bert/encoder/layer.0/output/LayerNorm",
                               axis=-1)]
    return _save(tmp_path / f"int8-{style}-{residual_qdq}.onnx", nodes, inits)


def _inside(pt, centre, size, grow):
    return abs(pt[0] - centre[0]) <= size[0] / 2 + grow and abs(pt[1] - centre[1]) <= size[1] / 2 + grow


@pytest.mark.parametrize("use_dot", [True, False])
def test_layout_edges_point_down_nodes_do_not_overlap_and_join_the_right_nodes(tmp_path, use_dot):
    if use_dot and not layout.dot_available():
        pytest.skip("Graphviz dot is not installed (make install / .ci/run install it)")
    g = load_graph(_int8(tmp_path))
    for kw in ({"collapse": False}, {"collapse": False, "show_qdq": True}, {}):
        d = layout.place(layout.build(g, **kw), use_dot=use_dot)
        assert d.engine.startswith("graphviz") == use_dot
        for e in d.edges:
            assert d.pos[e.src][1] < d.pos[e.dst][1], f"edge {e.src} -> {e.dst} does not point down"
        names = list(d.pos)
        for i, a in enumerate(names):  # no two boxes overlap
            for b in names[i + 1:]:
                (xa, ya), (wa, ha), (xb, yb), (wb, hb) = d.pos[a], d.size[a], d.pos[b], d.size[b]
                assert abs(xa - xb) >= (wa + wb) / 2 or abs(ya - yb) >= (ha + hb) / 2, (a, b)
        if use_dot:  # the fallback draws straight edges, which may cross boxes: the reason dot is preferred
            assert layout.edges_through_boxes(d) == []
        fig = view.figure(d)
        assert view.drawn_nodes(fig) == len(d.nodes)
        # every drawn edge starts at its source's box and ends at its target's box (dot leaves room for the head)
        edge_trace = next(t for t in fig.data if t.meta == "edges")
        xs, ys = list(edge_trace.x), list(edge_trace.y)
        drawn, cur = [], []
        for x, y in zip(xs, ys, strict=True):
            if x is None:
                drawn.append(cur)
                cur = []
            else:
                cur.append((x, -y))
        assert len(drawn) == len(d.edges)
        for e, path in zip(d.edges, drawn, strict=True):
            assert _inside(path[0], d.pos[e.src], d.size[e.src], 0.05), e
            assert _inside(path[-1], d.pos[e.dst], d.size[e.dst], 0.2), e
        assert len(next(t for t in fig.data if t.meta == "arrows").x) == len(d.edges)
    folded = layout.build(g, collapse=False)
    mm = "/bert/encoder/layer.0/dense/MatMul"
    assert any(e.dst == mm and e.src == "input:x" and len(e.qdq) == 2 for e in folded.edges)  # one glyph, Q and DQ
    assert folded.nodes[mm].quantized_weight
    assert not any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in folded.nodes.values())
    collapsed = layout.build(g)
    assert "layer 0" in collapsed.nodes and len(collapsed.nodes["layer 0"].members) == 3


def test_diff_finds_the_missing_residual_qdq(tmp_path):
    fp32 = load_graph(_fp32(tmp_path))
    full = overlays.diff(fp32, load_graph(_int8(tmp_path, residual_qdq=True)))
    assert full.float_inputs == [] and full.added == {"QuantizeLinear": 4, "DequantizeLinear": 4}
    partial = overlays.diff(fp32, load_graph(_int8(tmp_path, residual_qdq=False)))
    missing = {(r["node"], r["input"]) for r in partial.float_inputs}
    assert missing == {("/bert/encoder/layer.0/output/Add", "mm"), ("/bert/encoder/layer.0/output/Add", "x")}
    assert all("residual add" in r["why it matters"] for r in partial.float_inputs)


def test_sqnr_of_known_tensors():
    x = np.array([1.0, -2.0, 3.0, 4.0])
    assert overlays.sqnr_db(x, x) == float("inf")
    assert overlays.sqnr_db(x, x + 0.1) == pytest.approx(10 * np.log10(30 / 0.04))
    assert overlays.sqnr_db(x, np.zeros(4)) == pytest.approx(0.0)


@pytest.mark.parametrize("style", ["modelopt", "ort"])
def test_pairing_follows_the_graph_and_measures_the_known_error(tmp_path, style):
    fp32_path, int8_path = _fp32(tmp_path), _int8(tmp_path, style=style)
    pairs, fallback = overlays.pair_activations(load_graph(int8_path), load_graph(fp32_path))
    assert {(p.source, p.producer, p.fp32_tensor) for p in pairs} == {
        ("x", "input:x", "x"), ("mm", "/bert/encoder/layer.0/dense/MatMul", "mm")}  # weights are not activations
    assert fallback == []
    x = np.array([[0.013, 0.5, -0.26, 0.9], [1.2, -0.7, 0.333, 0.05]], dtype=np.float32)
    errs = overlays.tensor_errors(fp32_path, int8_path, [{"x": x}])
    xq = np.clip(np.round(x / 0.05), -128, 127) * 0.05
    assert list(errs[errs.tensor == "x"].sqnr_db) == pytest.approx([overlays.sqnr_db(x, xq)] * 2, rel=1e-4)
    mm = x @ W  # FP32 reference; the INT8 file computes MatMul(DQ(Q(x)), DQ(Q(W))) then quantizes at scale 0.1
    wq = np.clip(np.round(W / 0.02), -128, 127) * 0.02
    mmq = np.clip(np.round((xq @ wq) / 0.1), -128, 127) * 0.1
    assert errs[errs.tensor == "mm"].sqnr_db.item() == pytest.approx(overlays.sqnr_db(mm, mmq), rel=1e-3)


def test_model_explorer_node_data(tmp_path):
    path = overlays.model_explorer_json({"/a/MatMul": 12.5, "/b/Add": 30.0, "c": "CPUExecutionProvider"},
                                        tmp_path / "nd.json")
    data = json.loads(path.read_text())["main_graph"]  # top-level keys are graph ids: no wrapper
    assert data["results"]["/a/MatMul"] == {"value": 12.5} and data["results"]["c"]["value"] == "CPUExecutionProvider"
    assert len(data["gradient"]) == 2


def test_model_explorer_loads_the_node_data_with_its_own_package(tmp_path):
    """Model Explorer's ONNX adapter reads the model; its node-data classes read our file (no network, no server)."""
    dacite = pytest.importorskip("dacite")
    pytest.importorskip("model_explorer_onnx")
    from model_explorer.node_data_builder import GraphNodeData, ModelNodeData
    from model_explorer_onnx.main import ONNXAdapter

    fp32 = _fp32(tmp_path)
    graphs = ONNXAdapter().convert(str(fp32), {})["graphs"]
    main = graphs[0]
    ops = {n.id: n for n in main.nodes if n.label in ("MatMul", "Add")}
    values = {nid: float(i) for i, nid in enumerate(sorted(ops))}
    path = overlays.model_explorer_json(values, tmp_path / "nd.json", model=fp32)
    raw = json.loads(path.read_text())
    assert list(raw) == [main.id]  # the file names the graph Model Explorer shows
    loaded = ModelNodeData(graphsData={k: dacite.from_dict(GraphNodeData, v) for k, v in raw.items()})
    back = json.loads(loaded.to_json_string())  # what Model Explorer writes back holds everything we wrote
    assert all(back[g][k] == v for g in raw for k, v in raw[g].items())
    assert set(loaded.graphsData[main.id].results) == set(ops) and ops  # every key is one of its node ids


def test_bad_files_and_names_get_clear_errors(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model")
    with pytest.raises(NbUtilsError, match="notes.onnx is not an ONNX model"):
        load_graph(bad)
    good = _fp32(tmp_path)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(NbUtilsError, match="cut.onnx (is not an ONNX model|holds no graph nodes)"):
        load_graph(cut)
    model = onnx.load(good)
    onnx.save_model(model, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    (tmp_path / "ext.data").unlink()
    with pytest.raises(NbUtilsError, match="(?s)external data file 'ext.data'.*Fix: copy ext.data"):
        load_graph(tmp_path / "ext.onnx")
    with pytest.raises(NbUtilsError, match="does not exist"):
        load_graph(tmp_path / "missing.onnx")
    g = load_graph(good)
    with pytest.raises(NbUtilsError, match="has no encoder layer \\[7\\]"):
        layout.build(g, expand=[7])
    with pytest.raises(NbUtilsError, match="no node or tensor matching 'Softmaxx'"):
        layout.search(g, "Softmaxx")


def test_executed_graph_notebook_draws_every_node_in_chromium(smoke_run):
    _, run_dir, _ = smoke_run
    page_path = run_dir / "html" / "50_graph.html"
    assert page_path.is_file()
    size = (run_dir / "50_graph.ipynb").stat().st_size
    assert size < 3e6, f"executed 50_graph.ipynb is {size / 1e6:.1f} MB"
    with browser() as page:
        page.goto(page_path.as_uri())
        page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=60_000)
        page.wait_for_timeout(1000)
        counts = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
            const traces = gd.querySelectorAll('.scatterlayer .trace'); let want = 0, drawn = 0;
            gd._fullData.forEach(t => { if (t.meta === 'nodes') { want += t.x.length;
                drawn += traces[t.index] ? traces[t.index].querySelectorAll('.points path').length : 0; } });
            return {want, drawn}; })""")
        graphs = [c for c in counts if c["want"]]
        assert len(graphs) >= 6, counts
        assert all(c["want"] == c["drawn"] for c in graphs), counts
        page.locator(".js-plotly-plot").nth(1).screenshot(path=str(artefacts() / "graph-int8-layer0.png"))


def test_graph_cli_opens_models_without_encoder_layers(tmp_path, capsys):
    """`python -m nbutils graph` opens any ONNX model: onnx's own backend cases (Loop, If, Scan, Conv) and ResNet-50."""
    from pathlib import Path as _Path

    import onnx.backend.test
    from onnx.backend.test.case.node import collect_testcases

    from nbutils.suite.cli import main

    want = {"test_loop11", "test_if", "test_scan_sum", "test_conv_with_strides_padding"}
    files = []
    for case in collect_testcases():
        if case.name in want:
            files.append(tmp_path / f"{case.name}.onnx")
            onnx.save(case.model, files[-1])
    files.append(_Path(onnx.backend.test.__file__).parent / "data" / "light" / "light_resnet50.onnx")
    assert len(files) == 5 and files[-1].is_file()
    for f in files:
        assert main(["graph", str(f), "--repeat", "1"]) == 0, f
        out = capsys.readouterr().out
        assert "no one-layer view" in out and "whole:" in out and "error" not in out, out
    with pytest.raises(NbUtilsError, match="expand nothing"):  # asking for a layer it lacks says what to do
        layout.build(load_graph(files[-1]), expand=[0])
    # the control-flow test cases' bodies are views of their own in the CLI as in the inspector
    for name, bodies in (("test_loop11", ["Loop_0/body"]), ("test_if", ["If_0/else_branch", "If_0/then_branch"]),
                         ("test_scan_sum", ["Scan_0/body"])):
        f = tmp_path / f"{name}.onnx"
        main(["graph", str(f), "--repeat", "1"])
        out = capsys.readouterr().out
        assert all(f"body {b}:" in out for b in bodies), out
        assert sorted(load_graph(f).all_bodies()) == sorted(bodies)


def _nested_control_flow(path: Path) -> Path:
    """An If inside a Loop body; the If's branches read ``scale`` (a main-graph input) and the loop's ``acc``."""
    from onnx import helper as h

    def branch(op: str) -> onnx.GraphProto:
        return h.make_graph([h.make_node(op, ["acc", "scale"], [f"{op.lower()}_out"], name=f"{op}_in_branch")],
                            f"{op}_branch", [], [h.make_tensor_value_info(f"{op.lower()}_out", TensorProto.FLOAT, [2])])

    body = h.make_graph(
        [h.make_node("Greater", ["acc", "scale"], ["big"], name="Greater_0"),
         h.make_node("If", ["big"], ["acc_out"], name="If_0", then_branch=branch("Sub"), else_branch=branch("Add")),
         h.make_node("Identity", ["cond_in"], ["cond_out"], name="Identity_0")],
        "body", [h.make_tensor_value_info("i", TensorProto.INT64, []),
                 h.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 h.make_tensor_value_info("acc", TensorProto.FLOAT, [2])],
        [h.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         h.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2])])
    graph = h.make_graph([h.make_node("Loop", ["trips", "cond", "x"], ["y"], name="Loop_0", body=body)], "nested",
                         [h.make_tensor_value_info("trips", TensorProto.INT64, []),
                          h.make_tensor_value_info("cond", TensorProto.BOOL, []),
                          h.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                          h.make_tensor_value_info("scale", TensorProto.FLOAT, [2])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_control_flow_bodies_open_nested_with_their_outer_scope(tmp_path):
    """A Loop's body and the If inside it open as views; what a body reads from outside is drawn as its input."""
    g = load_graph(_nested_control_flow(tmp_path / "nested.onnx"))
    assert sorted(g.all_bodies()) == ["Loop_0/body", "Loop_0/body/If_0/else_branch", "Loop_0/body/If_0/then_branch"]
    body = g.body("Loop_0/body")
    assert body.outer == ["scale"] and "scale" in body.inputs  # the main graph's input, read inside the loop
    then = g.body("Loop_0/body/If_0/then_branch")
    assert then.outer == ["acc", "scale"]  # one from the loop body, one from the main graph
    assert "subgraph: 1 nodes" in body.nodes["If_0"].attrs["then_branch"]
    d = layout.build(then, collapse=False)
    assert {e.src for e in d.edges if e.dst == "Sub_in_branch"} == {"input:acc", "input:scale"}
    assert "enclosing graph" in d.nodes["input:acc"].hover
    ex = inspector.Explorer({"nested": tmp_path / "nested.onnx"})
    fig = ex.figure("nested", mode=inspector.BODY + "Loop_0/body/If_0/else_branch")
    assert view.drawn_nodes(fig) == 4  # two inputs from outside, the Add, the branch output
    with pytest.raises(NbUtilsError, match="open one of: Loop_0/body"):
        g.body("Loop_0/cond")


def test_find_node_opens_its_layer_centres_and_rings_it(tmp_path):
    """Searching a node inside a collapsed layer opens that layer, rings the node and centres the first view on it."""
    ex = inspector.Explorer({"int8": _int8(tmp_path)})
    fig = ex.figure("int8", mode=inspector.COLLAPSED, search="dense/MatMul")
    assert "opened layer 0" in fig.layout.title.text and "centred on /bert/encoder/layer.0/dense/MatMul" in fig.layout.title.text
    ring = next(t for t in fig.data if t.meta == "highlight")
    assert len(ring.x) == 1
    low, high = fig.layout.yaxis.range
    assert low <= ring.y[0] <= high  # the ring is inside the first view
    tall = view.figure(layout.build(load_graph(_int8(tmp_path)), expand=[0]), max_height=400,
                       focus="/bert/encoder/layer.0/dense/MatMul")
    low, high = tall.layout.yaxis.range
    centre = -layout.build(load_graph(_int8(tmp_path)), expand=[0]).pos["/bert/encoder/layer.0/dense/MatMul"][1]
    assert low <= centre <= high
    with pytest.raises(NbUtilsError, match="no node or tensor matching"):
        ex.figure("int8", search="no-such-node")


def test_qdq_glyph_hover_teaches_scale_zero_point_and_range(tmp_path):
    """Hovering a Q/DQ diamond shows its scale, zero point, INT8 type and the range the calibrator chose."""
    d = layout.build(load_graph(_int8(tmp_path)), expand=[0])
    glyphs = [e for e in d.edges if e.qdq]
    assert glyphs and all(e.qdq_hover for e in glyphs)
    x_edge = next(e for e in glyphs if "input_quantizer" in e.qdq_hover)
    # scale 0.05, zero point 0, int8: the representable range is [-128 * 0.05, 127 * 0.05]
    assert "scale 0.05" in x_edge.qdq_hover and "zero point 0 (int8)" in x_edge.qdq_hover
    assert "range [-6.4, 6.35]" in x_edge.qdq_hover
    fig = view.figure(d)
    diamonds = next(t for t in fig.data if t.meta == "qdq")
    assert any("range [-6.4, 6.35]" in h for h in diamonds.hovertext)
    # a compute node says which of its inputs arrive as INT8: the MatMul's activation and its weight both do
    mm = d.nodes["/bert/encoder/layer.0/dense/MatMul"]
    assert "inputs: 2 of 2 INT8 (through Q/DQ), 0 float" in mm.hover
    assert "INT8 codes × scale (DequantizeLinear)" in mm.hover


@pytest.mark.parametrize(("name", "op", "label"), [
    ("/bert/encoder/layer.0/attention/self/query/MatMul", "MatMul", "L0 · attn · Q proj"),
    ("/bert/encoder/layer.0/attention/self/key/MatMul", "MatMul", "L0 · attn · K proj"),
    ("/bert/encoder/layer.0/attention/self/value/MatMul", "MatMul", "L0 · attn · V proj"),
    ("/bert/encoder/layer.2/attention/self/MatMul", "MatMul", "L2 · attn · QKᵀ"),
    ("/bert/encoder/layer.2/attention/self/MatMul_1", "MatMul", "L2 · attn · ·V"),
    ("/bert/encoder/layer.1/intermediate/dense/MatMul", "MatMul", "L1 · FFN · up"),
    ("/bert/encoder/layer.1/output/dense/MatMul", "MatMul", "L1 · FFN · down"),
    ("/bert/encoder/layer.1/output/Add", "Add", "L1 · residual +"),
    ("resnetv17_conv0_fwd", "Conv", "Conv"),  # no module path: the operator
])
def test_short_labels_tell_q_k_v_apart(name, op, label):
    assert layout.short_label(name, op) == label
