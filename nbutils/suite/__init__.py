"""Suite: running the notebooks (papermill runner, profiles, sweeps) and the command line (``python -m nbutils``).

May import: every other layer (it is the top).
"""
