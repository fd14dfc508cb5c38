"""Shared helpers of the command-line tests live in ``cli_testing.py`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
