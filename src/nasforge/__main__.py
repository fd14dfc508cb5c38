"""``python -m nasforge``: the same as the ``nasforge`` command."""

from __future__ import annotations

from nasforge.cli import main

if __name__ == "__main__":
    main()
