"""Store: the results database and what writes to it.

All SQL (schema, migration, insert, read, delete) is in :mod:`~nbutils.store.db`; a notebook's run handle is
:mod:`~nbutils.store.notebook_run`; every kind of figure is built by :mod:`~nbutils.store.figures`; run clean-up is
:mod:`~nbutils.store.clean`.

May import: ``core``.
"""
