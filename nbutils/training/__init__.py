"""Training: data sets, tasks (tokenising, scoring), metrics, models, the FP32 baseline, and model inputs.

May import: ``core``, ``store``.
"""
