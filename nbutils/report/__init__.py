"""Report: tables and plotly charts built from the results database.

:mod:`~nbutils.report.tables` and :mod:`~nbutils.report.charts`: speed-ups, Pareto fronts, ladders, one row per
identity.

May import: ``core``, ``store``, ``training``, ``quant``, ``formats``, ``engines``.
"""
