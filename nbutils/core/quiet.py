"""Scoped silencing of library noise that teaches nothing (never global, never for the whole notebook).

Used around the calls that produce it: TorchScript's TracerWarnings while exporting (the graph is checked by parity
instead), ModelOpt's registration banner and decorated-method warning while placing quantizers, ONNX Runtime's
quantization tool logging "Axis 1 is out-of-range" and "consider pre-processing" through the root logger,
and transformers' "newly initialized" notice for a classification head that notebook 10 trains on purpose.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence


@contextlib.contextmanager
def quiet(*, stdout: bool = False, categories: Sequence[type[Warning]] = (), messages: Sequence[str] = (),
          loggers: Sequence[str] = (), level: int = logging.ERROR) -> Iterator[io.StringIO]:
    """Silence, for the block only: stdout (captured, yielded), warnings by category or message regex, loggers.

    ``loggers`` names loggers (``""`` is the root logger) raised to ``level`` while the block runs.
    """
    captured = io.StringIO()
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        for cat in categories:
            warnings.simplefilter("ignore", cat)
        for msg in messages:
            warnings.filterwarnings("ignore", message=msg)
        if stdout:
            stack.enter_context(contextlib.redirect_stdout(captured))
        for logger, _ in saved:
            logger.setLevel(level)
        try:
            yield captured
        finally:
            for logger, old in saved:
                logger.setLevel(old)
