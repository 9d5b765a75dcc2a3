"""``python -m nbutils``: see :mod:`nbutils.suite.cli`."""

from nbutils.suite.cli import main

raise SystemExit(main())
