"""Graph inspection of ONNX files without a server (notebook ``50_graph``).

* :mod:`~nbutils.graph.model`: read an ONNX file into a graph of nodes and typed tensors (shape inference,
  initializer statistics, Q/DQ scales), with clear errors for files that are not ONNX, truncated, or miss
  their external data;
* :mod:`~nbutils.graph.layout`: a layered top-to-bottom layout computed in Python (networkx), with Q/DQ
  pairs folded onto the edges they guard and encoder layers collapsed into one box each;
* :mod:`~nbutils.graph.view`: the plotly figure (renders in JupyterLab untrusted, in HTML and in Voilà);
* :mod:`~nbutils.graph.overlays`: what no viewer shows: the FP32 vs INT8 diff, per-tensor quantization error
  (SQNR) by following the graph, execution-provider placement, and Model Explorer node-data export.
* :mod:`~nbutils.graph.inspector`: the notebook widget; :mod:`~nbutils.graph.benchmark`: layout timing.

May import: every layer below it: ``core`` … ``ui`` (its inspector is an ipywidgets app).
"""
