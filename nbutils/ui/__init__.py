"""UI: ipywidgets controls and explorers, the dashboard (notebook 90, Voilà), HTML export and the Voilà launcher.

May import: every layer below: ``core``, ``store``, ``training``, ``quant``, ``formats``, ``engines``, ``report``.
"""
