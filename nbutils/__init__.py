"""nbutils: the helper package behind the INT8 quantization notebook suite.

Importing ``nbutils`` does nothing but define names: every module is imported on demand
(``from nbutils import data``), so the notebooks and the CLI pay only for what they use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
