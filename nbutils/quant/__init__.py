"""INT8 quantization in PyTorch with NVIDIA ModelOpt: placement, calibrators, QAT and distillation.

ModelOpt (``nvidia-modelopt``) is the maintained successor of NVIDIA's pytorch-quantization
(whose PyPI package is only a placeholder). Its ``TensorQuantizer`` modules fake-quantize
tensors in PyTorch (with a straight-through estimator for training) and export to ONNX as
QuantizeLinear/DequantizeLinear pairs, which TensorRT runs as real INT8.

Placement (:class:`Placement`) follows TensorRT's rules for BERT by default: INT8 symmetric,
per-channel weights, per-tensor activations at every linear input, both attention matmuls
(Q·Kᵀ and softmax·V, including the softmax output), and the LayerNorm inputs (the residual sums);
embeddings and the task head stay in floating point.

Calibration collects one histogram per activation quantizer in a single streamed pass
(2048 bins, batches fed one at a time, so memory is bounded on BERT-base too), then derives
each method's range from the same histograms: max, percentile, entropy (KL) and MSE.

The package is split by concern: :mod:`~nbutils.quant.recipes` (the vocabulary), :mod:`~nbutils.quant.placement`,
:mod:`~nbutils.quant.calibration`, :mod:`~nbutils.quant.persistence`, :mod:`~nbutils.quant.qat` and
:mod:`~nbutils.quant.rows`, with :mod:`~nbutils.quant.sensitivity` (per-layer
sensitivity, mixed precision) and :mod:`~nbutils.quant.fp8` (FP8 emulation); the names below are re-exported so
``from nbutils import quant; quant.quantize_ptq(...)`` keeps working.

May import: ``core``, ``store``, ``training``.
"""

from nbutils.quant.calibration import amax_under, apply_calibrator, collect_statistics, histogram, quantize_ptq, sqnr_db
from nbutils.quant.persistence import ensure_ptq, load_quantized, ptq_dir, qat_dir, save_quantized, sim_outputs, sim_predictor
from nbutils.quant.placement import count_enabled, insert_quantizers, quant_summary, quantizers
from nbutils.quant.qat import KDConfig, QATConfig, distillation_loss, run_qat
from nbutils.quant.recipes import CALIBRATORS, DEFAULT_KEEP_FLOAT, FFN_PATTERNS, PLACEMENTS, Placement, Recipe, parse_recipe
from nbutils.quant.rows import rows_to_measurements, score_row

__all__ = [
    'CALIBRATORS',
    'DEFAULT_KEEP_FLOAT',
    'FFN_PATTERNS',
    'KDConfig',
    'PLACEMENTS',
    'Placement',
    'QATConfig',
    'Recipe',
    'amax_under',
    'apply_calibrator',
    'collect_statistics',
    'count_enabled',
    'distillation_loss',
    'ensure_ptq',
    'histogram',
    'insert_quantizers',
    'load_quantized',
    'parse_recipe',
    'ptq_dir',
    'qat_dir',
    'sim_outputs',
    'sim_predictor',
    'quant_summary',
    'quantize_ptq',
    'quantizers',
    'rows_to_measurements',
    'run_qat',
    'save_quantized',
    'score_row',
    'sqnr_db',
]
