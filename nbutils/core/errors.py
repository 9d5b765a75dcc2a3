"""The one exception type the suite raises for bad input.

Every message names the problem and the fix, so a notebook cell or the CLI can show it as is.
"""

from __future__ import annotations


class NbUtilsError(ValueError):
    """Bad input or an unusable environment, with a message that says what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\n  Fix: {fix}")
