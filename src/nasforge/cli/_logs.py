"""Log lines on stderr for the long phases of a command (data unpacking, supernet epochs,
SPOS generations), so that a run says what it does also when no progress bar is drawn."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def info_on_stderr(show: bool, name: str = "nasforge") -> Iterator[None]:
    """While the block runs, INFO records of logger ``name`` go to stderr as
    ``nasforge: <message>`` lines (when ``show``; ``--quiet`` or a progress bar turn it off)."""
    if not show:
        yield
        return
    target = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("nasforge: %(message)s"))
    level = target.level
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    target.addHandler(handler)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(level)
        handler.flush()
