"""Formats: the model files the suite writes and checks.

ONNX export (:mod:`~nbutils.formats.to_onnx`),
OpenVINO IR and NNCF (:mod:`~nbutils.formats.to_openvino`), and what both share (:mod:`~nbutils.formats.files`).

May import: ``core``, ``store``, ``training``, ``quant``.
"""
