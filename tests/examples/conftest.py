"""The examples (examples/*.py) are importable by their file names (``import graph_search``),
as the evaluators of their searches record their functions (``graph_search:evaluate``)."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = str(Path(__file__).resolve().parents[2] / "examples")
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)
