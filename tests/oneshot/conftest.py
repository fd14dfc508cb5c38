"""Shared helpers of the mobile one-shot tests live in ``mobile_testing.py`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
