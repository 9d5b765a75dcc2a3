"""Progress bars that show where the user is looking.

In JupyterLab a bar is tqdm's widget. Under the suite runner (``python -m nbutils run`` / ``make run``), which
sets ``NBUTILS_TEXT_PROGRESS=1`` for the kernels it starts, bars are plain text on stderr, updated every few
seconds: the runner forwards the notebooks' stderr to its own output, so a 15-minute fine-tune shows its steps in
the terminal, and the executed notebook keeps a few short text lines instead of a widget that needs JavaScript.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TEXT_ENV = "NBUTILS_TEXT_PROGRESS"


def bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar: text on stderr under the runner, the notebook widget (or terminal bar) otherwise."""
    if os.environ.get(TEXT_ENV):
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("ncols", 100)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
