"""Core: what every layer needs and nothing else.

Paths, the machine (env, device), errors, quiet logging, progress bars and the vocabulary of names
(runtimes, metrics, recipes' folders).

May import: nothing of nbutils outside ``core`` (third-party libraries only, imported where used).
"""
