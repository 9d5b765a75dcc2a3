"""``python -m nbutils``: see :mod:`nbutils.cli`."""

from nbutils.cli import main

raise SystemExit(main())
